package io.saeguard.sae.engine;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.index.dim.NDIndexBooleans;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.saeguard.sae.Architecture;
import io.saeguard.sae.Normalization;
import io.saeguard.sae.SaeConfig;
import io.saeguard.sae.SingleSae;
import io.saeguard.sae.Weight;
import java.nio.file.Path;
import java.util.function.Supplier;

/**
 * One dictionary's weights on the engine's device, and its encode/decode as libtorch ops
 * (docs/algorithms.md#sae-encoders). Every per-batch array is created from the batch input, so it belongs to the
 * batch's manager and is freed with it; weights belong to this object's manager.
 *
 * <p>Confined to the engine thread.
 */
final class DeviceDictionary implements AutoCloseable {
    /** Per-token state of the input normalisation, needed to map a reconstruction back. */
    record Encoded(NDArray features, NDArray decisionValues, NDArray normScale, NDArray normShift) {
    }

    private final SaeConfig config;
    private final NDManager manager;
    private final NDArray wEnc;      // [d_in, d_sae] (a transposed view when stored [d_sae, d_in])
    private final NDArray bEnc;      // [d_sae], or null for gated
    private final NDArray wDec;      // [d_sae, d_in]
    private final NDArray bDec;      // [d_in]
    private final NDArray threshold; // [d_sae] or [1], or null
    private final NDArray cut;       // max(θ, 0): ReLU(pre)·1[pre > θ] == pre·1[pre > max(θ, 0)]
    private final NDArray bGate;     // gated only
    private final NDArray expRMag;   // gated only: exp(r_mag)
    private final NDArray bMag;      // gated only
    private final NDArray decoderNorm; // [d_sae], TopK with rescale_acts_by_decoder_norm only
    private final Bf16Linear bf16Gemm;  // engine.cpu_bf16 / gpu_bf16: the encoder GEMM in BF16, else null
    private final NDArray zero;        // 0-dim, on the device: the fill value of masked_fill_

    /**
     * @param bf16Cache null for the F32 GEMM; else the cache directory the BF16 module is copied to,
     *     and the encoder GEMM runs in BF16 ({@link Bf16Linear})
     */
    DeviceDictionary(SingleSae sae, NDManager parent, Device device, DataType dtype, Path bf16Cache) {
        this.config = sae.config();
        this.manager = parent.newSubManager(device);
        this.wEnc = upload(sae.wEnc(), device, dtype);
        this.bEnc = sae.bEnc().map(w -> upload(w, device, dtype)).orElse(null);
        this.wDec = upload(sae.wDec(), device, dtype);
        this.bDec = upload(sae.bDec(), device, dtype);
        // Thresholds stay F32 even when weights are half precision (SAELens PR #728: bf16 changes θ).
        this.threshold = sae.threshold().map(w -> upload(w, device, DataType.FLOAT32)).orElse(null);
        this.cut = threshold == null ? null : threshold.maximum(0f);
        this.bGate = sae.bGate().map(w -> upload(w, device, dtype)).orElse(null);
        this.expRMag = sae.rMag().map(w -> upload(w, device, dtype).exp()).orElse(null);
        this.bMag = sae.bMag().map(w -> upload(w, device, dtype)).orElse(null);
        this.decoderNorm = config.rescaleActsByDecoderNorm() ? wDec.square().sum(new int[] {1}).sqrt() : null;
        this.bf16Gemm = bf16Cache == null ? null : Bf16Linear.load(wEnc, device, bf16Cache);
        this.zero = manager.create(0f);
    }

    private NDArray upload(Weight w, Device device, DataType dtype) {
        NDArray stored = manager.create(w.directBytes(), new Shape(w.storedShape()), DataType.FLOAT32);
        NDArray onDevice = stored.toDevice(device, false);
        NDArray typed = dtype == DataType.FLOAT32 ? onDevice : onDevice.toType(dtype, false);
        return w.transposed() ? typed.transpose() : typed;
    }

    int dIn() {
        return config.dIn();
    }

    int dSae() {
        return config.dSae();
    }

    /**
     * Encodes {@code x [n, d_in]} (F32, in the batch's manager) to dense codes {@code [n, d_sae]}.
     * With {@code keepDecision}, {@code decisionValues} are what the keep/drop rule compared (for
     * tie-aware tests and dense output); without it the rule runs in place on the GEMM's output, so
     * the hot path allocates one {@code [n, d_sae]} array instead of several (each fresh array costs
     * page faults at these sizes; bench/README.md).
     */
    Encoded encode(NDArray x, boolean keepDecision) {
        Input prepared = input(x);
        NDArray in = prepared.sae();
        NDArray scale = prepared.scale();
        NDArray shift = prepared.shift();
        // [n, d_sae], a fresh array of this batch: safe to modify in place
        NDArray h = bf16Gemm == null ? in.matMul(wEnc) : bf16Gemm.apply(in);
        NDArray features;
        NDArray decision = null;
        Architecture arch = config.architecture();
        switch (arch) {
            case STANDARD -> {
                h.addi(bEnc);
                decision = keepDecision ? h.duplicate() : null;
                features = keepWhere(h, () -> h.gt(0f), () -> h.lte(0f)); // ReLU in place
            }
            case JUMPRELU, BATCHTOPK -> {
                h.addi(bEnc);
                decision = keepDecision ? h.duplicate() : null;
                features = keepWhere(h, () -> h.gt(cut), () -> h.lte(cut));
            }
            case TOPK -> {
                h.addi(bEnc);
                if (decoderNorm != null) {
                    h.muli(decoderNorm);
                }
                decision = keepDecision ? h.duplicate() : null;
                features = keepTopK(h, config.k().getAsInt(), false);
            }
            case ABSTOPK -> {
                h.addi(bEnc);
                decision = keepDecision ? h.duplicate() : null;
                features = keepTopK(h, config.k().getAsInt(), true);
            }
            case GATED -> {
                // pi_gate = h + b_gate; pi_mag = h * exp(r_mag) + b_mag  (sae_in @ (W_enc * exp(r_mag)) == h * exp(r_mag))
                NDArray gate = h.add(bGate);
                decision = gate;
                NDArray mag = h.muli(expRMag).addi(bMag);
                keepWhere(mag, () -> mag.gt(0f), () -> mag.lte(0f));
                features = keepWhere(mag, () -> gate.gt(0f), () -> gate.lte(0f));
            }
            default -> throw new IllegalStateException("not a single-dictionary architecture: " + arch);
        }
        return new Encoded(features, decision, scale, shift);
    }

    /** The encoder's input {@code sae_in} and the per-token normalisation state (null where the mode has none). */
    private record Input(NDArray sae, NDArray scale, NDArray shift) {
    }

    /** {@code sae_in = norm_in(x) − [apply_b_dec_to_input]·b_dec} (docs/algorithms.md#input-transforms), {@code [n, d_in]}. */
    private Input input(NDArray x) {
        NDArray scale = null;
        NDArray shift = null;
        NDArray in = x;
        switch (config.normalization()) {
            case NONE -> {
            }
            case EXPECTED_AVERAGE_ONLY_IN -> in = x.mul(config.inputScale());
            case CONSTANT_NORM_RESCALE -> {
                // c = sqrt(d) / ||x|| per token; the output is divided by c again.
                scale = x.square().sum(new int[] {1}, true).sqrt().pow(-1).mul(Math.sqrt(config.dIn()));
                in = x.mul(scale);
            }
            case LAYER_NORM -> {
                // (x - mu) / (sigma + 1e-5), sigma unbiased, as SAELens' run_time_activation_ln_in.
                shift = x.mean(new int[] {1}, true);
                NDArray centred = x.sub(shift);
                scale = centred.square().sum(new int[] {1}, true).div(config.dIn() - 1).sqrt();
                in = centred.div(scale.add(1e-5));
            }
            default -> throw new IllegalStateException("unknown normalisation " + config.normalization());
        }
        if (config.applyBDecToInput()) {
            in = in.sub(bDec);
        }
        return new Input(in, scale, shift);
    }

    /**
     * Whether each feature's code depends on its own pre-activation alone (ReLU, JumpReLU, BatchTopK on its global
     * threshold, Gated), so a few features can be encoded without the others ({@link #columns}). TopK and AbsTopK
     * need the k-th largest pre-activation of all features.
     */
    boolean perFeature() {
        return switch (config.architecture()) {
            case STANDARD, JUMPRELU, BATCHTOPK, GATED -> true;
            default -> false;
        };
    }

    /**
     * The encoder restricted to {@code features} (ids in {@code [0, d_sae)}): the columns of {@code W_enc} and the
     * matching entries of {@code b_enc}, {@code θ}, {@code b_gate}, {@code exp(r_mag)} and {@code b_mag}, gathered on
     * the device into arrays of their own ({@code d_in × |features|} values for {@code W_enc}), freed by closing it.
     *
     * @throws IllegalStateException unless {@link #perFeature()}
     */
    Columns columns(int[] features) {
        if (!perFeature()) {
            throw new IllegalStateException(config.architecture().wireName() + " codes depend on every feature's pre-activation");
        }
        return new Columns(features);
    }

    /**
     * A gathered slice of this dictionary's encoder, for the watched-feature encode (docs/algorithms.md#watched-feature-encode).
     * Confined to the engine thread, like the dictionary.
     */
    final class Columns implements AutoCloseable {
        private final NDManager columns;
        private final int width;
        private final NDArray wEncCols;      // [d_in, w]
        private final NDArray bEncCols;      // [w], or null for gated
        private final NDArray cutCols;       // [w] or [1], or null
        private final NDArray bGateCols;
        private final NDArray expRMagCols;
        private final NDArray bMagCols;

        private Columns(int[] features) {
            this.width = features.length;
            this.columns = manager.newSubManager();
            long[] ids = new long[width];
            for (int i = 0; i < width; i++) {
                if (features[i] < 0 || features[i] >= config.dSae()) {
                    columns.close();
                    throw new IllegalArgumentException("feature " + features[i] + " outside [0, " + config.dSae() + ")");
                }
                ids[i] = features[i];
            }
            NDArray index = columns.create(ids).toDevice(manager.getDevice(), false);
            this.wEncCols = own(wEnc.get(new NDIndex(":, {}", index)));
            this.bEncCols = bEnc == null ? null : own(bEnc.get(index));
            this.cutCols = cut == null ? null : cut.size() == 1 ? cut : own(cut.get(index));
            this.bGateCols = bGate == null ? null : own(bGate.get(index));
            this.expRMagCols = expRMag == null ? null : own(expRMag.get(index));
            this.bMagCols = bMag == null ? null : own(bMag.get(index));
        }

        /** A contiguous copy owned by this slice's manager (an op's result belongs to its first operand's). */
        private NDArray own(NDArray gathered) {
            NDArray copy = gathered.duplicate();
            copy.attach(columns);
            gathered.close();
            return copy;
        }

        int width() {
            return width;
        }

        /**
         * The codes of the slice's features, {@code [n, w]}, exactly as {@link #encode} computes them for those
         * columns: the same input transforms, then the architecture's rule on {@code sae_in · W_enc[:, features]}.
         */
        NDArray encode(NDArray x) {
            NDArray in = input(x).sae();
            NDArray h = in.matMul(wEncCols); // [n, w]
            return switch (config.architecture()) {
                case STANDARD -> {
                    h.addi(bEncCols);
                    yield h.muli(h.gt(0f));
                }
                case JUMPRELU, BATCHTOPK -> {
                    h.addi(bEncCols);
                    yield h.muli(h.gt(cutCols));
                }
                case GATED -> {
                    NDArray gate = h.add(bGateCols);
                    NDArray mag = h.muli(expRMagCols).addi(bMagCols);
                    yield mag.muli(mag.gt(0f)).muli(gate.gt(0f));
                }
                default -> throw new IllegalStateException("not per-feature: " + config.architecture());
            };
        }

        @Override
        public void close() {
            columns.close();
        }
    }

    /**
     * Keeps the k largest entries per row (by |value| when signed), ReLU'd unless signed; zeros elsewhere.
     * In place: {@code pre} must be an array of this batch.
     */
    private NDArray keepTopK(NDArray pre, int k, boolean signed) {
        NDArray scores = signed ? pre.abs() : pre;
        NDArray kth = scores.topK(k, 1, true, true).get(0).get(":, " + (k - 1) + ":" + k); // [n, 1]
        keepWhere(pre, () -> scores.gte(kth), () -> scores.lt(kth));
        return signed ? pre : keepWhere(pre, () -> pre.gt(0f), () -> pre.lte(0f));
    }

    /**
     * Zeroes {@code a} in place where {@code keep} is false, returning {@code a}: {@code a.muli(keep)} on small
     * arrays, {@code masked_fill_(drop, 0)} on large ones ({@link DeviceSae#MASKED_FILL_MIN_ELEMENTS}); {@code keep} and
     * {@code drop} are the same condition and its negation, and only the one used is computed.
     */
    private NDArray keepWhere(NDArray a, Supplier<NDArray> keep, Supplier<NDArray> drop) {
        if (a.size() >= DeviceSae.MASKED_FILL_MIN_ELEMENTS) {
            maskedFill(a, drop.get(), zero);
        } else {
            try (NDArray k = keep.get()) {
                a.muli(k);
            }
        }
        return a;
    }

    /**
     * {@code a.masked_fill_(mask, value)}, closing {@code mask}. Not {@code a.set(mask, 0f)}: DJL turns that into
     * libtorch's {@code index_put_}, which becomes {@code masked_fill_} only when the value is a CPU scalar; with
     * DJL's value on the GPU it takes the {@code nonzero()} path instead, a device sync and {@code [n, 2]} int64
     * indices for every dropped element (measured on an H100 at {@code [4096, 16384]}: 58 ms for an encode whose GEMM
     * takes 6 ms; bench/README.md). DJL's boolean-mask indexer calls {@code masked_fill_} itself.
     */
    static void maskedFill(NDArray a, NDArray mask, NDArray value) {
        a.getNDArrayInternal().getIndexer(a.getManager()).set(a, new NDIndexBooleans(mask), value);
    }

    /** The reconstruction {@code x̂ [n, d_in]} in the input's space. */
    NDArray decode(Encoded e) {
        NDArray a = e.features();
        if (decoderNorm != null) {
            a = a.div(decoderNorm);
        }
        NDArray y = a.matMul(wDec).add(bDec);
        return switch (config.normalization()) {
            case NONE -> y;
            case EXPECTED_AVERAGE_ONLY_IN -> y.div(config.outputScale());
            case CONSTANT_NORM_RESCALE -> y.div(e.normScale());
            case LAYER_NORM -> y.mul(e.normScale()).add(e.normShift());
        };
    }

    Normalization normalization() {
        return config.normalization();
    }

    @Override
    public void close() {
        if (bf16Gemm != null) {
            bf16Gemm.close();
        }
        manager.close();
    }
}
