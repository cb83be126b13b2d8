package io.saeguard.bench;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.dim.NDIndexBooleans;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.saeguard.sae.SaeInputException;
import io.saeguard.sae.SingleSae;
import io.saeguard.sae.engine.DeviceSae;
import io.saeguard.sae.engine.DeviceSpec;
import io.saeguard.sae.engine.EngineOptions;
import io.saeguard.sae.engine.SaeEngine;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * Where {@link DeviceSae#encode}'s time goes, for one shape and batch: times the engine's whole
 * encode and the bare GEMM interleaved in one JVM (so machine noise hits both alike), and then the
 * JumpReLU encode re-enacted op by op in DJL, mirroring {@code DeviceSae.encodePadded} and
 * {@code DeviceDictionary.encode} (saeguard-sae as of this module's creation; update it if they change).
 * Medians over the repetitions. Also times {@link #leanEncode}, a proposal for the engine.
 *
 * <p>Usage: {@code EncodeBreakdown [d_inxd_sae] [batch] [reps] [--row|--mask]}; {@code -Dsaeguard.bench.threads=N},
 * {@code -Dsaeguard.bench.device=gpu} (default {@code cpu}; on a GPU every timed step ends by reading one element
 * back, which waits for the device). With {@code --mask} it times only the JumpReLU mask variants (see {@link #maskVariants}).
 * With {@code --row} it skips the op-by-op part and prints one markdown table row (interleaved.sh):
 * median times and the median of the per-repetition time ratios, which a noisy neighbour cannot
 * skew the way it skews two measurements taken minutes apart.
 */
public final class EncodeBreakdown {
    private static boolean gpu;

    private EncodeBreakdown() {
    }

    public static void main(String[] args) throws SaeInputException {
        SaeShape shape = SaeShape.parse(args.length > 0 ? args[0] : "768x24576");
        int batch = args.length > 1 ? Integer.parseInt(args[1]) : 64;
        int reps = args.length > 2 ? Integer.parseInt(args[2]) : 30;
        boolean row = args.length > 3 && args[3].equals("--row");
        boolean mask = args.length > 3 && args[3].equals("--mask");
        int threads = Integer.getInteger("saeguard.bench.threads", Runtime.getRuntime().availableProcessors());
        int kmax = EncodeBenchmark.MAX_ACTIVE;
        DeviceSpec spec = DeviceSpec.parse(System.getProperty("saeguard.bench.device", "cpu"));
        gpu = spec.kind() == DeviceSpec.Kind.GPU;

        try (SaeEngine engine = SaeEngine.start(new EngineOptions(spec, EngineOptions.defaultCacheDir(), threads, 1, false))) {
            SyntheticJumpRelu synthetic = new SyntheticJumpRelu(shape, 1);
            SingleSae sae = synthetic.inMemory();
            float[] x = synthetic.input(batch, 2);
            try (DeviceSae deviceSae = engine.load(sae, kmax);
                    NDManager m = Engine.getEngine("PyTorch").newBaseManager(engine.device())) {
                NDArray w = m.create(sae.wEnc().directBytes(), new Shape(shape.dIn(), shape.dSae()), DataType.FLOAT32)
                        .toDevice(engine.device(), false);
                NDArray bEnc = m.create(synthetic.bEnc()).toDevice(engine.device(), false);
                NDArray thresholdOrZero = m.create(synthetic.threshold()).toDevice(engine.device(), false).maximum(0f);
                NDArray zero = m.create(0f).toDevice(engine.device(), false);
                NDArray xNd = m.create(x, new Shape(batch, shape.dIn())).toDevice(engine.device(), false);

                if (mask) {
                    maskVariants(m, xNd, w, bEnc, thresholdOrZero, zero, kmax, reps);
                    return;
                }
                Map<String, long[]> samples = new LinkedHashMap<>();
                ByteBuffer staging = ByteBuffer.allocateDirect(x.length * 4).order(ByteOrder.nativeOrder());
                for (int r = -3; r < reps; r++) { // three unrecorded warm-up rounds
                    int i = r;
                    long t = System.nanoTime();
                    try (NDArray h = xNd.matMul(w)) {
                        sync(h);
                    }
                    record(samples, "GEMM alone (x resident)", i, reps, t);

                    t = System.nanoTime();
                    deviceSae.encode("breakdown", x, batch);
                    record(samples, "DeviceSae.encode", i, reps, t);

                    t = System.nanoTime();
                    leanEncode(m, x, batch, shape, w, bEnc, thresholdOrZero, zero, kmax);
                    record(samples, "lean encode (proposal)", i, reps, t);

                    if (row) {
                        continue;
                    }
                    try (NDManager b = m.newSubManager()) {
                        t = System.nanoTime();
                        if (!DeviceSae.allFinite(x, x.length)) {
                            throw new IllegalStateException("synthetic input is not finite");
                        }
                        t = record(samples, "0 finite scan in Java (the CPU's check)", i, reps, t);
                        ByteBuffer staged = staging.duplicate().order(ByteOrder.nativeOrder());
                        staged.clear();
                        staged.asFloatBuffer().put(x, 0, x.length);
                        staged.limit(x.length * 4);
                        t = record(samples, "1a float[] -> reused direct buffer", i, reps, t);
                        NDArray in = b.create(staged, new Shape(batch, shape.dIn()), DataType.FLOAT32).toDevice(engine.device(), false);
                        sync(in);
                        t = record(samples, "1b tensor from the buffer, to the device", i, reps, t);
                        try (NDArray zeros = in.mul(0f); NDArray sum = zeros.sum()) {
                            if (Float.isNaN(sum.getFloat())) {
                                throw new IllegalStateException("synthetic input is not finite");
                            }
                        }
                        t = record(samples, "1c finite check on the device (GPU's)", i, reps, t);
                        NDArray h = in.matMul(w); // [batch, d_sae]
                        sync(h);
                        t = record(samples, "2 GEMM x·W_enc", i, reps, t);
                        h.addi(bEnc);
                        sync(h);
                        t = record(samples, "3 + b_enc (in place)", i, reps, t);
                        maskedFill(h, h.lte(thresholdOrZero), zero);
                        sync(h);
                        t = record(samples, "4 masked_fill_(h <= max(θ, 0), 0)", i, reps, t);
                        NDList top = h.topK(kmax + 1, 1, true, true);
                        sync(top.get(0));
                        t = record(samples, "5 topK(k+1) on [batch, d_sae]", i, reps, t);
                        int[] idx = top.get(1).toType(DataType.INT32, false).toIntArray();
                        float[] vals = top.get(0).toType(DataType.FLOAT32, false).toFloatArray();
                        record(samples, "6 [batch, k+1] ids+values to JVM", i, reps, t);
                        if (idx.length + vals.length == 0) {
                            throw new IllegalStateException("unreachable: keeps the results alive");
                        }
                    }
                }

                if (row) {
                    long[] gemm = samples.get("GEMM alone (x resident)");
                    System.out.printf(Locale.ROOT, "| %s | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %d |%n", shape, batch, median(gemm) / 1e6,
                            median(samples.get("DeviceSae.encode")) / 1e6, median(samples.get("lean encode (proposal)")) / 1e6,
                            medianRatio(gemm, samples.get("DeviceSae.encode")), medianRatio(gemm, samples.get("lean encode (proposal)")), reps);
                    return;
                }
                double gemmFlops = shape.gemmFlops(batch);
                System.out.printf(Locale.ROOT, "%s batch %d on %s, intra-op threads %d, %d reps, medians:%n", shape, batch, spec, threads, reps);
                double steps = 0;
                for (Map.Entry<String, long[]> e : samples.entrySet()) {
                    double ms = median(e.getValue()) / 1e6;
                    // DeviceSae checks finiteness once: in Java on the CPU (step 0), on the device on a GPU (1c)
                    boolean otherCheck = gpu ? e.getKey().startsWith("0 ") : e.getKey().startsWith("1c");
                    if (Character.isDigit(e.getKey().charAt(0)) && !otherCheck) {
                        steps += ms;
                    }
                    System.out.printf(Locale.ROOT, "  %-42s %10.3f ms%n", e.getKey(), ms);
                }
                double encodeMs = median(samples.get("DeviceSae.encode")) / 1e6;
                double leanMs = median(samples.get("lean encode (proposal)")) / 1e6;
                double gemmMs = median(samples.get("GEMM alone (x resident)")) / 1e6;
                System.out.printf(Locale.ROOT, "  %-42s %10.3f ms%n", gpu ? "sum of steps 1a-6" : "sum of steps 0-6 but 1c", steps);
                System.out.printf(Locale.ROOT, "  encode/matmul throughput %.2f (lean %.2f); GEMM %.1f GFLOP/s, encode %.1f GFLOP/s, lean %.1f GFLOP/s%n",
                        gemmMs / encodeMs, gemmMs / leanMs, gemmFlops / gemmMs / 1e6, gemmFlops / encodeMs / 1e6, gemmFlops / leanMs / 1e6);
            }
        }
    }

    /**
     * A JumpReLU encode with one full-size temporary instead of eight: libtorch's CPU allocator hands
     * back fresh pages for every large tensor, so each {@code [batch, d_sae]} temporary costs page
     * faults and zeroing on top of its arithmetic, and PyTorch's integer row sum is slow. In place
     * {@code + b_enc} and mask; {@code h > max(θ, 0)} equals {@code max(h, 0)·(h > θ)}'s support;
     * top-(k+1) answers "more than k active" without counting. Returns ids, values and truncations
     * like {@code DeviceSae.encodePadded} (checked equal on these weights).
     */
    static int leanEncode(NDManager m, float[] x, int batch, SaeShape shape, NDArray wEnc, NDArray bEnc, NDArray thresholdOrZero,
            NDArray zero, int kmax) {
        try (NDManager b = m.newSubManager()) {
            NDArray h = b.create(x, new Shape(batch, shape.dIn())).toDevice(wEnc.getDevice(), false).matMul(wEnc); // [batch, d_sae]
            h.addi(bEnc);
            maskedFill(h, h.lte(thresholdOrZero), zero); // DeviceDictionary's path from MASKED_FILL_MIN_ELEMENTS up
            NDList top = h.topK(kmax + 1, 1, true, true); // [batch, kmax + 1]
            int[] ids = top.get(1).toType(DataType.INT32, false).toIntArray();
            float[] values = top.get(0).toFloatArray();
            int truncated = 0;
            for (int t = 0; t < batch; t++) {
                if (values[t * (kmax + 1) + kmax] != 0f) {
                    truncated++;
                }
            }
            return truncated + ids.length;
        }
    }

    /**
     * {@code --mask}: the JumpReLU mask on a fresh {@code [batch, d_sae]} GEMM output, three ways, then the top-(k+1)
     * that follows, alternated in one JVM: {@code h.muli(h.gt(cut))} (F32 times bool, which libtorch casts element by
     * element; DeviceDictionary's path below MASKED_FILL_MIN_ELEMENTS), {@code h.set(h.lte(cut), 0f)} (DJL's
     * {@code index_put_}: DeviceDictionary from 2026-11-22 21:50 to 2026-11-23 00:10) and {@code masked_fill_} through
     * DJL's boolean-mask indexer (since). Medians and the median per-repetition ratios.
     */
    private static void maskVariants(NDManager m, NDArray x, NDArray w, NDArray bEnc, NDArray cut, NDArray zero, int kmax, int reps) {
        String[] names = {"muli(gt(cut))", "set(lte(cut), 0f) (index_put_)", "masked_fill_(lte(cut), 0)"};
        Map<String, long[]> samples = new LinkedHashMap<>();
        for (int r = -3; r < reps; r++) {
            for (int variant = 0; variant < names.length; variant++) {
                try (NDManager b = m.newSubManager()) {
                    NDArray h = x.matMul(w);
                    h.attach(b);
                    h.addi(bEnc);
                    sync(h);
                    long t = System.nanoTime();
                    switch (variant) {
                        case 0 -> h.muli(h.gt(cut));
                        case 1 -> h.set(h.lte(cut), 0f);
                        default -> maskedFill(h, h.lte(cut), zero);
                    }
                    sync(h);
                    t = record(samples, "mask: " + names[variant], r, reps, t);
                    sync(h.topK(kmax + 1, 1, true, true).get(0));
                    record(samples, "then topK(k+1), after " + names[variant], r, reps, t);
                }
            }
        }
        System.out.printf(Locale.ROOT, "[%s] · [%s] on %s, %d reps, medians:%n", x.getShape(), w.getShape(), x.getDevice(), reps);
        for (Map.Entry<String, long[]> e : samples.entrySet()) {
            System.out.printf(Locale.ROOT, "  %-52s %8.3f ms%n", e.getKey(), median(e.getValue()) / 1e6);
        }
        long[] fill = samples.get("mask: " + names[2]);
        System.out.printf(Locale.ROOT, "  muli time / masked_fill_ time, median per-repetition ratio: %.2f%n",
                medianRatio(samples.get("mask: " + names[0]), fill));
        System.out.printf(Locale.ROOT, "  set (index_put_) time / masked_fill_ time, median per-repetition ratio: %.2f%n",
                medianRatio(samples.get("mask: " + names[1]), fill));
    }

    /** {@code a.masked_fill_(mask, value)} as DeviceDictionary does it (DJL's boolean-mask indexer), closing the mask. */
    static void maskedFill(NDArray a, NDArray mask, NDArray value) {
        a.getNDArrayInternal().getIndexer(a.getManager()).set(a, new NDIndexBooleans(mask), value);
    }

    /** On a GPU, waits for the device by reading one element of {@code a} back; nothing on the CPU. */
    private static void sync(NDArray a) {
        if (gpu) {
            try (NDArray e = a.get("0,0"); NDArray f = e.toType(DataType.FLOAT32, false)) {
                f.toFloatArray();
            }
        }
    }

    private static long record(Map<String, long[]> samples, String step, int rep, int reps, long since) {
        long now = System.nanoTime();
        if (rep >= 0) {
            samples.computeIfAbsent(step, k -> new long[reps])[rep] = now - since;
        }
        return now;
    }

    /** Median over repetitions of {@code baseline[r] / other[r]}: throughput of other relative to baseline. */
    private static double medianRatio(long[] baseline, long[] other) {
        double[] r = new double[baseline.length];
        for (int i = 0; i < r.length; i++) {
            r[i] = (double) baseline[i] / other[i];
        }
        Arrays.sort(r);
        return r.length % 2 == 1 ? r[r.length / 2] : (r[r.length / 2 - 1] + r[r.length / 2]) / 2;
    }

    private static double median(long[] values) {
        long[] v = values.clone();
        Arrays.sort(v);
        return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2.0;
    }
}
