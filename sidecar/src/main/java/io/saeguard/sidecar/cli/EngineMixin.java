package io.saeguard.sidecar.cli;

import io.saeguard.sae.engine.DeviceSpec;
import io.saeguard.sae.engine.EngineOptions;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** The SAE engine options shared by every command that encodes. */
final class EngineMixin {
    @Option(names = "--device", defaultValue = "cpu", description = "auto | cpu | gpu[:N] (default ${DEFAULT-VALUE})")
    String device;

    @Option(names = "--threads", description = "libtorch intra-op threads (default: one per core)")
    Integer threads;

    @Option(names = "--djl-cache", description = "DJL cache dir where libtorch's natives are extracted "
            + "(default: $SAEGUARD_DJL_CACHE or ~/.cache/saeguard/djl)")
    Path djlCache;

    @Option(names = "--gpu-f16", description = "hold weights in F16 on a GPU (ignored on CPU)")
    boolean gpuF16;

    @Option(names = "--cpu-bf16", description = "on a CPU, run the encoder GEMM in BF16: 1.0-3.9x the F32 GEMM's speed with AVX512-BF16 "
            + "(by shape and batch; without it or AMX it may be slower), codes off by ~0.1 %% (max 0.7 %%) of a token's largest code "
            + "(bench/README.md; ignored on a GPU)")
    boolean cpuBf16;

    @Option(names = "--gpu-bf16", description = "on a GPU, run the encoder GEMM in BF16 on the tensor cores, F32 weights otherwise "
            + "(ignored on a CPU; not with --gpu-f16)")
    boolean gpuBf16;

    EngineOptions options() {
        int intra = threads == null ? Runtime.getRuntime().availableProcessors() : threads;
        return new EngineOptions(DeviceSpec.parse(device), djlCache == null ? EngineOptions.defaultCacheDir() : djlCache, intra, 1, gpuF16, cpuBf16, gpuBf16);
    }
}
