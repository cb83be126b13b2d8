package io.saeguard.sae.engine;

import java.nio.file.Path;
import java.util.Objects;

/**
 * How the SAE engine starts.
 *
 * @param device where to encode
 * @param cacheDir DJL's cache directory: libtorch's natives are extracted here from the
 *     {@code pytorch-native-cpu} jar on first start (~430 MB, a few seconds), then reused
 * @param intraOpThreads libtorch intra-op threads (the GEMM's parallelism)
 * @param interOpThreads libtorch inter-op threads (we run one op at a time: 1 is enough)
 * @param gpuHalfPrecision hold weights in F16 on a GPU (never on a CPU, where F16 matmul is ~300× slower)
 * @param cpuBf16 on a CPU, run the encoder GEMM in BF16 (W_enc and the input rounded to BF16, F32
 *     accumulation, everything after the GEMM in F32): 1.0–3.9× the F32 GEMM's speed (by shape and batch) on a CPU
 *     with AVX512-BF16, at a BF16-sized error in the pre-activations (bench/README.md measures both); ignored on a GPU
 * @param gpuBf16 on a GPU, run the encoder GEMM in BF16 the same way (W_enc held once more in BF16 inside libtorch,
 *     tensor cores, F32 accumulation, everything after the GEMM in F32); ignored on a CPU; not with {@code gpuHalfPrecision}
 */
public record EngineOptions(DeviceSpec device, Path cacheDir, int intraOpThreads, int interOpThreads, boolean gpuHalfPrecision,
        boolean cpuBf16, boolean gpuBf16) {
    public EngineOptions {
        Objects.requireNonNull(device, "device");
        Objects.requireNonNull(cacheDir, "cacheDir");
        if (intraOpThreads < 1 || interOpThreads < 1) {
            throw new IllegalArgumentException("thread counts must be >= 1");
        }
        if (gpuHalfPrecision && gpuBf16) {
            throw new IllegalArgumentException("gpu_f16 and gpu_bf16 exclude each other: F16 weights, or an F32 model with a BF16 "
                    + "encoder GEMM; choose one");
        }
    }

    /** Options without a BF16 encoder GEMM on a GPU. */
    public EngineOptions(DeviceSpec device, Path cacheDir, int intraOpThreads, int interOpThreads, boolean gpuHalfPrecision,
            boolean cpuBf16) {
        this(device, cacheDir, intraOpThreads, interOpThreads, gpuHalfPrecision, cpuBf16, false);
    }

    /** Options with the F32 encoder GEMM on a CPU. */
    public EngineOptions(DeviceSpec device, Path cacheDir, int intraOpThreads, int interOpThreads, boolean gpuHalfPrecision) {
        this(device, cacheDir, intraOpThreads, interOpThreads, gpuHalfPrecision, false);
    }

    /** The default cache directory: {@code $SAEGUARD_DJL_CACHE}, else {@code ~/.cache/saeguard/djl}. */
    public static Path defaultCacheDir() {
        String env = System.getenv("SAEGUARD_DJL_CACHE");
        if (env != null && !env.isBlank()) {
            return Path.of(env);
        }
        return Path.of(System.getProperty("user.home"), ".cache", "saeguard", "djl");
    }

    /** The given device, the default cache dir, one intra-op thread per core, one inter-op thread. */
    public static EngineOptions defaults(DeviceSpec device) {
        return new EngineOptions(device, defaultCacheDir(), Runtime.getRuntime().availableProcessors(), 1, false, false, false);
    }
}
