package io.saeguard.bench;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.saeguard.sae.SaeInputException;
import io.saeguard.sae.SingleSae;
import io.saeguard.sae.engine.DeviceSae;
import io.saeguard.sae.engine.DeviceSpec;
import io.saeguard.sae.engine.EngineOptions;
import io.saeguard.sae.engine.SaeEngine;
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
 * <p>Usage: {@code EncodeBreakdown [d_inxd_sae] [batch] [reps] [--row|--mask]}; {@code -Dsaeguard.bench.threads=N}.
 * With {@code --mask} it times only the JumpReLU mask variants (see {@link #maskVariants}).
 * With {@code --row} it skips the op-by-op part and prints one markdown table row (interleaved.sh):
 * median times and the median of the per-repetition time ratios, which a noisy neighbour cannot
 * skew the way it skews two measurements taken minutes apart.
 */
public final class EncodeBreakdown {
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

        try (SaeEngine engine = SaeEngine.start(new EngineOptions(DeviceSpec.CPU, EngineOptions.defaultCacheDir(), threads, 1, false))) {
            SyntheticJumpRelu synthetic = new SyntheticJumpRelu(shape, 1);
            SingleSae sae = synthetic.inMemory();
            float[] x = synthetic.input(batch, 2);
            try (DeviceSae deviceSae = engine.load(sae, kmax);
                    NDManager m = Engine.getEngine("PyTorch").newBaseManager(Device.cpu())) {
                NDArray w = m.create(sae.wEnc().directBytes(), new Shape(shape.dIn(), shape.dSae()), DataType.FLOAT32);
                NDArray bEnc = m.create(synthetic.bEnc());
                NDArray threshold = m.create(synthetic.threshold());
                NDArray thresholdOrZero = threshold.maximum(0f);
                NDArray xNd = m.create(x, new Shape(batch, shape.dIn()));

                if (mask) {
                    maskVariants(m, xNd, w, bEnc, thresholdOrZero, kmax, reps);
                    return;
                }
                Map<String, long[]> samples = new LinkedHashMap<>();
                for (int r = -3; r < reps; r++) { // three unrecorded warm-up rounds
                    int i = r;
                    long t = System.nanoTime();
                    xNd.matMul(w).close();
                    record(samples, "GEMM alone (x resident)", i, reps, t);

                    t = System.nanoTime();
                    deviceSae.encode("breakdown", x, batch);
                    record(samples, "DeviceSae.encode", i, reps, t);

                    t = System.nanoTime();
                    leanEncode(m, x, batch, shape, w, bEnc, thresholdOrZero, kmax);
                    record(samples, "lean encode (proposal)", i, reps, t);

                    if (row) {
                        continue;
                    }
                    try (NDManager b = m.newSubManager()) {
                        t = System.nanoTime();
                        NDArray in = b.create(x, new Shape(batch, shape.dIn()));
                        t = record(samples, "1 input float[] -> NDArray", i, reps, t);
                        NDArray h = in.matMul(w); // [batch, d_sae]
                        t = record(samples, "2 GEMM x·W_enc", i, reps, t);
                        NDArray decision = h.add(bEnc);
                        t = record(samples, "3 + b_enc", i, reps, t);
                        NDArray features = decision.maximum(0f).mul(decision.gt(threshold).toType(DataType.FLOAT32, false));
                        t = record(samples, "4 JumpReLU (max, gt, toType, mul)", i, reps, t);
                        NDList top = features.topK(kmax, 1, true, true);
                        t = record(samples, "5 topK(64) on [batch, d_sae]", i, reps, t);
                        int[] idx = top.get(1).toType(DataType.INT32, false).toIntArray();
                        float[] vals = top.get(0).toType(DataType.FLOAT32, false).toFloatArray();
                        t = record(samples, "6 [batch, 64] ids+values to JVM", i, reps, t);
                        int[] counts = features.neq(0f).toType(DataType.INT32, false).sum(new int[] {1})
                                .toType(DataType.INT32, false).toIntArray();
                        record(samples, "7 truncation count (neq, sum)", i, reps, t);
                        if (idx.length + vals.length + counts.length == 0) {
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
                System.out.printf(Locale.ROOT, "%s batch %d, intra-op threads %d, %d reps, medians:%n", shape, batch, threads, reps);
                double steps = 0;
                for (Map.Entry<String, long[]> e : samples.entrySet()) {
                    double ms = median(e.getValue()) / 1e6;
                    if (Character.isDigit(e.getKey().charAt(0))) {
                        steps += ms;
                    }
                    System.out.printf(Locale.ROOT, "  %-36s %10.3f ms%n", e.getKey(), ms);
                }
                double encodeMs = median(samples.get("DeviceSae.encode")) / 1e6;
                double leanMs = median(samples.get("lean encode (proposal)")) / 1e6;
                double gemmMs = median(samples.get("GEMM alone (x resident)")) / 1e6;
                System.out.printf(Locale.ROOT, "  %-36s %10.3f ms%n", "sum of steps 1-7", steps);
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
            int kmax) {
        try (NDManager b = m.newSubManager()) {
            NDArray h = b.create(x, new Shape(batch, shape.dIn())).matMul(wEnc); // [batch, d_sae]
            h.addi(bEnc);
            h.set(h.lte(thresholdOrZero), 0f); // masked_fill_: DeviceDictionary's path from MASKED_FILL_MIN_ELEMENTS up
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
     * {@code --mask}: the JumpReLU mask on a fresh {@code [batch, d_sae]} GEMM output, as {@code DeviceDictionary}
     * did until 2026-11-22 21:50 ({@code h.muli(h.gt(cut))}: F32 times bool, which libtorch casts element by
     * element) and as it does since ({@code h.set(h.lte(cut), 0f)}: {@code masked_fill_}), then the top-(k+1)
     * that follows, alternated in one JVM; medians and the median per-repetition ratio.
     */
    private static void maskVariants(NDManager m, NDArray x, NDArray w, NDArray bEnc, NDArray cut, int kmax, int reps) {
        Map<String, long[]> samples = new LinkedHashMap<>();
        for (int r = -3; r < reps; r++) {
            for (int variant = 0; variant < 2; variant++) {
                try (NDManager b = m.newSubManager()) {
                    NDArray h = x.matMul(w);
                    h.attach(b);
                    h.addi(bEnc);
                    long t = System.nanoTime();
                    if (variant == 0) {
                        h.muli(h.gt(cut));
                        t = record(samples, "mask: muli(gt(cut)) (until 21:50)", r, reps, t);
                    } else {
                        h.set(h.lte(cut), 0f);
                        t = record(samples, "mask: set(lte(cut), 0) (masked_fill_)", r, reps, t);
                    }
                    h.topK(kmax + 1, 1, true, true);
                    record(samples, variant == 0 ? "then topK(k+1), after muli" : "then topK(k+1), after masked_fill_", r, reps, t);
                }
            }
        }
        System.out.printf(Locale.ROOT, "[%s] · [%s], %d reps, medians:%n", x.getShape(), w.getShape(), reps);
        for (Map.Entry<String, long[]> e : samples.entrySet()) {
            System.out.printf(Locale.ROOT, "  %-40s %8.3f ms%n", e.getKey(), median(e.getValue()) / 1e6);
        }
        System.out.printf(Locale.ROOT, "  muli time / masked_fill_ time, median per-repetition ratio: %.2f%n",
                medianRatio(samples.get("mask: muli(gt(cut)) (until 21:50)"), samples.get("mask: set(lte(cut), 0) (masked_fill_)")));
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
