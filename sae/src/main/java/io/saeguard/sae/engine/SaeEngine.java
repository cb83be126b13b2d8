package io.saeguard.sae.engine;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.pytorch.jni.JniUtils;
import io.saeguard.sae.Sae;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The SAE engine: DJL's PyTorch engine on one device, and the root {@link NDManager} that owns
 * every SAE's weights on it.
 *
 * <p><b>Threading contract.</b> An engine and every {@link DeviceSae} it loads are confined to one
 * thread: the thread that created the engine must make every later call ({@link #load},
 * {@link DeviceSae#encode}, {@link #close}). libtorch itself parallelises each op over
 * {@link EngineOptions#intraOpThreads()} threads, so one engine thread keeps the cores busy, and
 * confinement means no call needs a lock. Hand work to the engine thread through a queue and hand
 * results back (the sidecar hops back with {@code runOnContext}).
 *
 * <p><b>Lifecycle.</b> {@link #start} configures DJL offline (see {@link DjlRuntime}); {@link #close}
 * frees all device memory of all loaded SAEs.
 */
public final class SaeEngine implements AutoCloseable {
    private static final Logger LOGGER = LoggerFactory.getLogger(SaeEngine.class);

    private final Engine engine;
    private final Device device;
    private final NDManager root;
    private final DataType weightType;
    private final Thread owner;
    private final Path bf16Cache; // null: F32 encoder GEMM

    private SaeEngine(Engine engine, Device device, DataType weightType, Path bf16Cache) {
        this.engine = engine;
        this.device = device;
        this.root = engine.newBaseManager(device);
        this.weightType = weightType;
        this.bf16Cache = bf16Cache;
        this.owner = Thread.currentThread();
    }

    /**
     * Sets how many threads libtorch's CPU ops use when called from <em>this</em> thread, leaving every other thread's
     * setting and the one new threads start from as they were. libtorch's CPU build parallelises through OpenMP, whose
     * thread count is a per-thread setting that each thread takes from a process-wide value the first time it runs an
     * op; {@code JniUtils.setNumThreads} sets both, so the process-wide value is put back from a short-lived thread.
     * A background thread (the sidecar's metrics encoder) so never takes more than its share of the cores, however
     * many the engine thread's GEMMs use: measured on the 2-core benchmark machine, a 256-row full encode at 2304x16384
     * took 133 ms on 2 cores (1.99 cores busy) and 223 ms on 1 (1.02 cores), the other thread keeping its 2.
     *
     * @return the number of threads this thread used before
     */
    public static int intraOpThreadsOfThisThread(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be at least 1: " + threads);
        }
        int before = JniUtils.getNumThreads(); // also takes up the process-wide value on this thread's first call
        if (before == threads) {
            return before;
        }
        JniUtils.setNumThreads(threads);
        Thread restore = new Thread(() -> JniUtils.setNumThreads(before), "saeguard-torch-threads");
        restore.start();
        try {
            restore.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return before;
    }

    /** Whether this CPU runs BF16 GEMMs natively (AVX512-BF16 or AMX-BF16), so that {@link EngineOptions#cpuBf16()} pays off. */
    public static boolean cpuHasNativeBf16() {
        return CpuFeatures.hasNativeBf16();
    }

    /** The number of threads libtorch's CPU ops use when called from this thread. */
    public static int intraOpThreadsHere() {
        return JniUtils.getNumThreads();
    }

    /** Starts DJL (offline) and picks the device. */
    public static SaeEngine start(EngineOptions options) {
        Engine engine = DjlRuntime.configure(options);
        Device device = resolve(options.device(), engine);
        DataType weights = device.isGpu() && options.gpuHalfPrecision() ? DataType.FLOAT16 : DataType.FLOAT32;
        boolean bf16 = device.isGpu() ? options.gpuBf16() : options.cpuBf16();
        if (options.cpuBf16() && device.isGpu()) {
            LOGGER.atWarn().addKeyValue("device", device).log("cpu_bf16 applies to CPU encoding only; ignored on a GPU (see gpu_bf16, gpu_f16)");
        }
        if (options.gpuBf16() && !device.isGpu()) {
            LOGGER.atWarn().addKeyValue("device", device).log("gpu_bf16 applies to GPU encoding only; ignored on the CPU (see cpu_bf16)");
        }
        if (bf16 && !device.isGpu() && !CpuFeatures.hasNativeBf16()) {
            LOGGER.atWarn().log("cpu_bf16 is on but this CPU has neither AVX512-BF16 nor AMX-BF16: the BF16 GEMM is emulated "
                    + "and may be slower than F32; consider turning it off");
        }
        SaeEngine started = new SaeEngine(engine, device, weights, bf16 ? options.cacheDir() : null);
        LOGGER.atInfo().addKeyValue("requested", options.device()).addKeyValue("device", device)
                .addKeyValue("weights", weights).addKeyValue("encoderGemm", started.encoderPrecision()).log("SAE engine started");
        return started;
    }

    /** The encoder GEMM's precision: "bf16" with {@code cpu_bf16} on a CPU or {@code gpu_bf16} on a GPU, else the weights' type ("f32" or "f16"). */
    public String encoderPrecision() {
        return bf16Cache != null ? "bf16" : weightType == DataType.FLOAT16 ? "f16" : "f32";
    }

    /**
     * The DJL device for a spec: {@code auto} picks the first CUDA GPU DJL finds, else the CPU.
     *
     * @throws IllegalStateException when a GPU is requested and DJL finds none with that index
     */
    public static Device resolve(DeviceSpec spec, Engine engine) {
        int gpus = engine.getGpuCount();
        return switch (spec.kind()) {
            case CPU -> Device.cpu();
            case AUTO -> gpus > 0 ? Device.gpu(0) : Device.cpu();
            case GPU -> {
                if (spec.gpuIndex() >= gpus) {
                    throw new IllegalStateException("device " + spec + " requested but DJL found " + gpus + " CUDA GPU(s)"
                            + (gpus == 0 ? "; the PyTorch natives in use are CPU-only or no CUDA driver is present" : ""));
                }
                yield Device.gpu(spec.gpuIndex());
            }
        };
    }

    /** The device encoding runs on. */
    public Device device() {
        return device;
    }

    /** "cpu" or "gpu:N", for metric labels. */
    public String deviceLabel() {
        return device.isGpu() ? "gpu:" + device.getDeviceId() : "cpu";
    }

    /** libtorch's version, for logs and reports. */
    public String libtorchVersion() {
        return engine.getVersion();
    }

    /**
     * Copies an SAE's weights to the device.
     *
     * @param maxActive the most active features returned per token by {@link DeviceSae#encode}
     *     (TopK SAEs return exactly k; this caps the others)
     */
    public DeviceSae load(Sae sae, int maxActive) {
        checkThread();
        return new DeviceSae(sae, root, device, weightType, bf16Cache, maxActive, this::checkThread);
    }

    void checkThread() {
        if (Thread.currentThread() != owner) {
            throw new IllegalStateException("SaeEngine is confined to thread '" + owner.getName() + "', called from '"
                    + Thread.currentThread().getName() + "'");
        }
    }

    @Override
    public void close() {
        root.close();
    }
}
