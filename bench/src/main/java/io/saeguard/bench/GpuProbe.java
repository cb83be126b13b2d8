package io.saeguard.bench;

import ai.djl.engine.Engine;
import ai.djl.util.cuda.CudaUtils;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.saeguard.sae.SaeInputException;
import io.saeguard.sae.SingleSae;
import io.saeguard.sae.engine.DeviceSae;
import io.saeguard.sae.engine.DeviceSpec;
import io.saeguard.sae.engine.EngineOptions;
import io.saeguard.sae.engine.SaeEngine;
import java.util.List;

/**
 * Can DJL reach CUDA here, and does the GPU encode what the CPU does? {@code bench/gpu.sh} runs this
 * before the DJL GPU benchmarks and records its JSON: what DJL saw (libtorch version and flavour, CUDA
 * version, GPU count, compute capability, the {@code PYTORCH_*} / {@code LD_LIBRARY_PATH} settings in
 * force) and, when a GPU is visible, one synthetic JumpReLU batch encoded on the CPU and on the GPU with
 * the largest difference between the two.
 *
 * <pre>java -cp bench/target/benchmarks.jar io.saeguard.bench.GpuProbe [gpu|gpu:N|cpu] [D_INxD_SAE]</pre>
 *
 * <p>With {@code cpu} the comparison runs on a second CPU engine ({@code bench/gpu.sh --smoke}: the probe's
 * own check on a machine without a GPU).
 *
 * <p>Exit status: 0 GPU found and codes agree, 1 codes disagree, 3 DJL finds no CUDA GPU (the JSON's
 * {@code hint} says what DJL needs).
 */
public final class GpuProbe {
    /**
     * Largest |GPU − CPU| over the batch's largest code, features active on both; F32 on both sides, so rounding
     * only. At most one feature in 10,000 active ones may flip (a pre-activation within rounding of its threshold).
     */
    static final double TOLERANCE = 1e-3;
    private static final List<String> ENV = List.of("PYTORCH_LIBRARY_PATH", "PYTORCH_VERSION", "PYTORCH_FLAVOR",
            "LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES", "DJL_CACHE_DIR", "SAEGUARD_DJL_CACHE");

    private GpuProbe() {
    }

    public static void main(String[] args) throws SaeInputException {
        String device = args.length > 0 ? args[0] : "gpu";
        SaeShape shape = SaeShape.parse(args.length > 1 ? args[1] : "2304x16384");
        ObjectMapper json = new ObjectMapper();
        ObjectNode out = json.createObjectNode();
        ObjectNode env = out.putObject("env");
        for (String k : ENV) {
            String v = System.getenv(k);
            env.put(k, v == null ? "" : v);
        }
        // The CPU engine configures DJL for the JVM (offline, cache dir, threads): it must start first.
        SaeEngine cpu = SaeEngine.start(EngineOptions.defaults(DeviceSpec.CPU));
        int status;
        try {
            Engine engine = Engine.getEngine("PyTorch");
            out.put("djl_engine", engine.getEngineName());
            out.put("libtorch", engine.getVersion());
            out.put("djl_has_cuda", CudaUtils.hasCuda());
            out.put("cuda_version", CudaUtils.hasCuda() ? CudaUtils.getCudaVersionString() : "");
            int gpus = engine.getGpuCount();
            out.put("gpu_count", gpus);
            if (gpus == 0 && DeviceSpec.parse(device).kind() != DeviceSpec.Kind.CPU) {
                out.put("hint", "DJL found no CUDA GPU: the libtorch in use is a CPU build (pytorch-native-cpu) or no CUDA driver "
                        + "is visible. DJL 0.35 needs CUDA natives of PyTorch 2.7.1: with network access DJL downloads them when "
                        + "pytorch-native-cpu is not on the class path; offline, set PYTORCH_LIBRARY_PATH to a libtorch 2.7.1 CUDA "
                        + "build's lib/ with PYTORCH_VERSION=2.7.1 and PYTORCH_FLAVOR=cu126 (or cu128), and a pytorch-jni built "
                        + "for it (see shared/research/gpu-notes.md)");
                status = 3;
            } else {
                status = compare(cpu, device, shape, out);
            }
        } finally {
            cpu.close();
        }
        System.out.println(out.toPrettyString());
        System.exit(status);
    }

    private static int compare(SaeEngine cpu, String device, SaeShape shape, ObjectNode out) throws SaeInputException {
        SyntheticJumpRelu synthetic = new SyntheticJumpRelu(shape, EncodeBenchmark.SEED);
        SingleSae sae = synthetic.inMemory();
        int tokens = 64;
        float[] x = synthetic.input(tokens, EncodeBenchmark.SEED + 1);
        float[] onCpu;
        try (DeviceSae d = cpu.load(sae, 256)) {
            onCpu = d.encodeDense(x, tokens, false).features();
        }
        float[] onGpu;
        try (SaeEngine gpu = SaeEngine.start(EngineOptions.defaults(DeviceSpec.parse(device)));
                DeviceSae d = gpu.load(sae, 256)) {
            out.put("device", gpu.deviceLabel());
            if (gpu.device().isGpu()) {
                out.put("compute_capability", CudaUtils.getComputeCapability(gpu.device().getDeviceId()));
                out.put("gpu_memory_bytes", CudaUtils.getGpuMemory(gpu.device()).getMax());
            }
            onGpu = d.encodeDense(x, tokens, false).features();
        }
        double scale = 0;
        double worst = 0;
        long active = 0;
        long flips = 0;
        for (int i = 0; i < onCpu.length; i++) {
            scale = Math.max(scale, Math.abs(onCpu[i]));
            if (onCpu[i] != 0f) {
                active++;
            }
            if ((onCpu[i] != 0f) != (onGpu[i] != 0f)) {
                flips++; // a pre-activation within rounding of its threshold: a JumpReLU code jumps there
            } else {
                worst = Math.max(worst, Math.abs(onCpu[i] - onGpu[i]));
            }
        }
        double relative = scale == 0 ? worst : worst / scale;
        boolean agrees = relative <= TOLERANCE && flips <= Math.max(1, active / 10_000);
        out.put("shape", shape.toString());
        out.put("tokens", tokens);
        out.put("active_on_cpu", active);
        out.put("active_set_flips", flips);
        out.put("max_abs_difference_over_largest_code", relative);
        out.put("agrees", agrees);
        return agrees ? 0 : 1;
    }
}
