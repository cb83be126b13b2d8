package io.saeguard.sae.engine;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.saeguard.sae.ComposedSae;
import io.saeguard.sae.Sae;
import io.saeguard.sae.SaeConfig;
import io.saeguard.sae.SaeInputException;
import io.saeguard.sae.SingleSae;
import io.saeguard.topics.codes.SparseCodes;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collection;
import java.util.Optional;

/**
 * An SAE loaded on the engine's device. {@link #encode} is the hot path: one matmul per batch, the
 * activation rule, and top-k extraction on the device, so only {@code [tokens, kmax]} ids and values
 * come back to the JVM. Confined to the engine thread (see {@link SaeEngine}).
 */
public final class DeviceSae implements AutoCloseable {
    /**
     * Pre-activation arrays ({@code tokens × d_sae}) from this many elements up are masked with libtorch's
     * {@code masked_fill_}, smaller ones with a multiply by the bool mask. Measured with {@code EncodeBreakdown
     * 2304x16384 BATCH 40 --mask} (bench/README.md): at {@code [512, 16384]} (8.4M elements, 32 MB, beyond the
     * caches) F32 × bool {@code muli}, which libtorch evaluates with a cast per element, took 16.4 ms against
     * 9.8 ms for the fill; at 256 rows the two were level (4.4 ms); below that the fill's extra op costs up to
     * 0.4 ms right after a cache-cold GEMM (batch 1: 0.46 vs 0.10 ms). Public so tests can cover both paths.
     */
    public static final long MASKED_FILL_MIN_ELEMENTS = 1L << 22;

    private final Sae sae;
    private final SaeConfig config;
    private final NDManager manager;
    private final DeviceDictionary base;
    private final DeviceDictionary residual; // null unless composed
    private final ComposedSae.ResidualInput residualInput;
    private final int kmax;
    private final boolean signed;
    private final DataType weightType;
    private final Runnable threadCheck;
    private ByteBuffer staging;
    private int[] watched = new int[0];
    private DeviceDictionary.Columns baseColumns;     // null when no base feature is watched or the base is encoded whole
    private DeviceDictionary.Columns residualColumns; // null when no residual feature is watched or the residual (TopK) is encoded whole
    private int[] baseWatched = new int[0];           // watched base ids, in watched order
    private int[] residualWatched = new int[0];       // watched residual ids (local to the residual), in watched order

    DeviceSae(Sae sae, NDManager parent, Device device, DataType weightType, Path bf16Cache, int maxActive, Runnable threadCheck) {
        if (maxActive < 1) {
            throw new IllegalArgumentException("maxActive must be >= 1");
        }
        this.sae = sae;
        this.config = sae.config();
        this.threadCheck = threadCheck;
        this.weightType = weightType;
        this.manager = parent.newSubManager(device);
        if (sae instanceof ComposedSae c) {
            this.base = new DeviceDictionary(c.base(), manager, device, weightType, bf16Cache);
            this.residual = new DeviceDictionary(c.residual(), manager, device, weightType, bf16Cache);
            this.residualInput = c.residualInput();
            this.signed = c.base().config().architecture().signed() || c.residual().config().architecture().signed();
        } else {
            this.base = new DeviceDictionary((SingleSae) sae, manager, device, weightType, bf16Cache);
            this.residual = null;
            this.residualInput = ComposedSae.ResidualInput.ERROR;
            this.signed = config.architecture().signed();
        }
        this.kmax = Math.min(config.dSae(), config.k().orElse(maxActive));
    }

    public Sae sae() {
        return sae;
    }

    public SaeConfig config() {
        return config;
    }

    /** Entries per token in the padded top-k layout: k for TopK SAEs, else the {@code maxActive} cap. */
    public int kmax() {
        return kmax;
    }

    /** Result of {@link #encodePadded}: {@code [tokens, kmax]} ids (-1 = padding) and values (0 = padding). */
    public record Padded(int tokens, int kmax, int[] indices, float[] values, int truncatedTokens) {
    }

    /** Result of {@link #encodeDense}: row-major {@code [tokens, d_sae]} codes and, if asked, {@code [tokens, d_in]} reconstruction. */
    public record Dense(int tokens, float[] features, float[] decisionValues, Optional<float[]> reconstruction) {
    }

    /**
     * Encodes {@code tokens} rows of {@code x} (row-major {@code [tokens, d_in]}) to sparse codes.
     *
     * @throws SaeInputException when the width is wrong or a value is NaN or infinite (naming the token)
     */
    public SparseCodes encode(String saeId, float[] x, int tokens) throws SaeInputException {
        return encode(saeId, x, tokens, false);
    }

    /**
     * Like {@link #encode(String, float[], int)}; with {@code valuesChecked} the caller vouches that every value is
     * finite (the sidecar checks each record on its poll thread, to dead-letter that record alone), and the batch
     * is not checked again here.
     */
    public SparseCodes encode(String saeId, float[] x, int tokens, boolean valuesChecked) throws SaeInputException {
        threadCheck.run();
        try (NDManager batch = manager.newSubManager()) {
            TopK top = topK(batch, x, tokens, valuesChecked);
            return SparseCodes.fromTopK(saeId, config.dSae(), tokens, top.stride(), kmax, top.ids(), top.values());
        }
    }

    /** Like {@link #encode} but in the padded {@code [tokens, kmax]} layout the CLI writes. */
    public Padded encodePadded(float[] x, int tokens) throws SaeInputException {
        threadCheck.run();
        try (NDManager batch = manager.newSubManager()) {
            TopK top = topK(batch, x, tokens, false);
            int k = top.stride();
            int[] indices = new int[tokens * kmax];
            float[] vals = new float[tokens * kmax];
            int truncated = 0;
            for (int t = 0; t < tokens; t++) {
                System.arraycopy(top.ids(), t * k, indices, t * kmax, kmax);
                System.arraycopy(top.values(), t * k, vals, t * kmax, kmax);
                if (k > kmax && top.values()[t * k + kmax] != 0f) {
                    truncated++;
                }
            }
            for (int i = 0; i < vals.length; i++) {
                if (vals[i] == 0f) {
                    indices[i] = -1;
                    vals[i] = 0f; // a dropped negative pre-activation times a 0 mask is -0: padding is +0
                }
            }
            return new Padded(tokens, kmax, indices, vals, truncated);
        }
    }

    /**
     * Whether every feature's code depends on its own pre-activation only (ReLU, JumpReLU, BatchTopK, Gated), so
     * {@link #encodeWatched} can encode a few features without the others. TopK and AbsTopK rank all pre-activations:
     * they have no watched path. A composed SAE has one when its base does: a watched feature of a TopK residual is
     * read from the residual's whole encode, run only when one of its features is watched.
     */
    public boolean encodesWatchedAlone() {
        return base.perFeature();
    }

    /**
     * Sets the features {@link #encodeWatched} encodes (ids in {@code [0, d_sae)}). The columns of {@code W_enc} they
     * need are gathered on the device, replacing the previous set's (the old slice is freed first, so at most one
     * slice per dictionary is held: {@code d_in × |features|} values of {@code W_enc} plus a few per feature). A
     * set equal to the current one changes nothing.
     *
     * @throws IllegalStateException unless {@link #encodesWatchedAlone()}
     * @throws IllegalArgumentException for an id outside the SAE
     */
    public void watch(Collection<Integer> features) {
        threadCheck.run();
        if (!encodesWatchedAlone()) {
            throw new IllegalStateException("SAE " + config.path() + " is " + config.architecture().wireName()
                    + ": its codes depend on every feature's pre-activation, so it has no watched-feature encode");
        }
        int[] ids = features.stream().mapToInt(Integer::intValue).distinct().sorted().toArray();
        if (Arrays.equals(ids, watched)) {
            return;
        }
        for (int f : ids) {
            if (f < 0 || f >= config.dSae()) {
                throw new IllegalArgumentException("feature " + f + " outside [0, " + config.dSae() + ") of SAE " + config.path());
            }
        }
        closeColumns(); // the old slice goes first: never two slices (nor a second W_enc) at once
        watched = new int[0]; // until the new slice is gathered: a failed gather leaves an SAE watching nothing, not a stale set
        baseWatched = watched;
        residualWatched = watched;
        int split = base.dSae();
        int[] b = Arrays.stream(ids).filter(f -> f < split).toArray();
        int[] r = Arrays.stream(ids).filter(f -> f >= split).map(f -> f - split).toArray();
        // A residual reading the base's error needs the whole base reconstruction, hence the whole base encode: the
        // base's watched features are then read from that encode instead of a slice. A TopK residual is encoded whole.
        boolean baseWhole = residual != null && residualInput == ComposedSae.ResidualInput.ERROR && r.length > 0;
        baseColumns = b.length > 0 && !baseWhole ? base.columns(b) : null;
        residualColumns = r.length > 0 && residual.perFeature() ? residual.columns(r) : null;
        baseWatched = b;
        residualWatched = r;
        watched = ids;
    }

    /** The features {@link #encodeWatched} encodes, ascending. */
    public int[] watched() {
        return watched.clone();
    }

    /**
     * The codes of the {@linkplain #watch watched} features only, for every token: {@code sae_in · W_enc[:, watched]}
     * and the architecture's rule, after the same input transforms as {@link #encode} (docs/algorithms.md#watched-feature-encode).
     * Values equal the full encode's up to F32 rounding of the smaller GEMM; no {@code max_active} cap applies (every
     * watched feature that fires is returned), and other features are absent. Within a token, entries are ordered by
     * decreasing |value| as in {@link #encode}.
     *
     * @throws IllegalStateException unless {@link #encodesWatchedAlone()}
     * @throws SaeInputException when the width is wrong or (unless {@code valuesChecked}) a value is not finite
     */
    public SparseCodes encodeWatched(String saeId, float[] x, int tokens, boolean valuesChecked) throws SaeInputException {
        threadCheck.run();
        if (!encodesWatchedAlone()) {
            throw new IllegalStateException("SAE " + config.path() + " has no watched-feature encode (" + config.architecture().wireName() + ")");
        }
        if (watched.length == 0) {
            checkLength(x, tokens);
            if (!valuesChecked && !allFinite(x, tokens * config.dIn())) {
                throw nonFinite(x, tokens);
            }
            return SparseCodes.fromColumns(saeId, config.dSae(), tokens, watched, new float[0]);
        }
        try (NDManager batch = manager.newSubManager()) {
            NDArray in = input(batch, x, tokens, valuesChecked);
            NDList parts = new NDList();
            DeviceDictionary.Encoded baseWhole = null;
            if (residualWatched.length > 0 && residualInput == ComposedSae.ResidualInput.ERROR) {
                baseWhole = base.encode(in, false);
            }
            if (baseWatched.length > 0) {
                parts.add(baseWhole != null ? columnsOf(batch, baseWhole.features(), baseWatched) : baseColumns.encode(in));
            }
            if (residualWatched.length > 0) {
                NDArray resIn = baseWhole != null ? in.sub(base.decode(baseWhole)) : in;
                parts.add(residualColumns != null ? residualColumns.encode(resIn)
                        : columnsOf(batch, residual.encode(resIn, false).features(), residualWatched));
            }
            NDArray cols = parts.size() == 1 ? parts.get(0) : NDArrays.concat(parts, 1); // [tokens, |watched|], ids ascending
            return SparseCodes.fromColumns(saeId, config.dSae(), tokens, watched, cols.toType(DataType.FLOAT32, false).toFloatArray());
        }
    }

    /** Columns {@code ids} of {@code dense [n, d]}, as {@code [n, |ids|]}. */
    private NDArray columnsOf(NDManager batch, NDArray dense, int[] ids) {
        NDArray index = batch.create(Arrays.stream(ids).asLongStream().toArray()).toDevice(manager.getDevice(), false);
        return dense.get(new NDIndex(":, {}", index));
    }

    private void closeColumns() {
        if (baseColumns != null) {
            baseColumns.close();
            baseColumns = null;
        }
        if (residualColumns != null) {
            residualColumns.close();
            residualColumns = null;
        }
    }

    /** Row-major {@code [tokens, stride]} top entries per token (by |value| when signed), largest first. */
    private record TopK(int stride, int[] ids, float[] values) {
    }

    private TopK topK(NDManager batch, float[] x, int tokens, boolean valuesChecked) throws SaeInputException {
        NDArray a = codes(batch, input(batch, x, tokens, valuesChecked), false, false).features();
        // One extra column tells truncation: a token lost features iff its (kmax+1)-th largest is non-zero.
        boolean countTruncation = kmax < config.dSae() && config.k().isEmpty();
        int k = countTruncation ? kmax + 1 : kmax;
        NDArray scores = signed ? a.abs() : a;
        NDList top = scores.topK(k, 1, true, true);
        NDArray idx = top.get(1);
        NDArray values = signed ? a.gather(idx, 1) : top.get(0);
        return new TopK(k, idx.toType(DataType.INT32, false).toIntArray(), values.toType(DataType.FLOAT32, false).toFloatArray());
    }

    /** Dense codes (and optionally the reconstruction), for the CLI's {@code --dense}/{@code --reconstruct} and for health checks. */
    public Dense encodeDense(float[] x, int tokens, boolean reconstruct) throws SaeInputException {
        threadCheck.run();
        try (NDManager batch = manager.newSubManager()) {
            Result r = codes(batch, input(batch, x, tokens, false), reconstruct, true);
            return new Dense(tokens, r.features().toType(DataType.FLOAT32, false).toFloatArray(),
                    r.decision().toType(DataType.FLOAT32, false).toFloatArray(),
                    Optional.ofNullable(r.reconstruction()).map(n -> n.toType(DataType.FLOAT32, false).toFloatArray()));
        }
    }

    /**
     * The reconstruction alone, row-major {@code [tokens, d_in]}: what a residual SAE's training
     * subtracts from its input ({@code saeguard train --residual-of}).
     */
    public float[] reconstruct(float[] x, int tokens) throws SaeInputException {
        threadCheck.run();
        try (NDManager batch = manager.newSubManager()) {
            return codes(batch, input(batch, x, tokens, false), true, false).reconstruction().toType(DataType.FLOAT32, false).toFloatArray();
        }
    }

    private record Result(NDArray features, NDArray decision, NDArray reconstruction) {
    }

    /**
     * Batches of at least this many values ({@code tokens × d_in}) are checked for NaN and infinity on a GPU
     * rather than in Java: the device check costs a fixed ~0.3–0.5 ms (two kernels and a read-back; measured on an
     * H100 at 64 to 4096 tokens of 2304), the Java scan ~1 ns per value (8.9 ms for 4096 × 2304 there), so they
     * break even near 300k values.
     */
    public static final int DEVICE_FINITE_CHECK_MIN_VALUES = 1 << 18;

    /**
     * The batch on the device, {@code [tokens, d_in]} in the weights' type, after checking it: width and length, and
     * that every value is finite. The finite check is a scan of {@code x} in Java before the copy, except for large
     * batches on a GPU ({@link #DEVICE_FINITE_CHECK_MIN_VALUES}): there it is one reduction on the device after the
     * copy ({@code sum(x · 0)} is NaN exactly when some value is not finite), because the scan of a 4096 × 2304 batch
     * cost more than its GEMM (bench/README.md, GPU). Either way a bad batch is scanned again to name the token and
     * dimension. With {@code valuesChecked} (the caller checked) there is no finite check.
     */
    private NDArray input(NDManager batch, float[] x, int tokens, boolean valuesChecked) throws SaeInputException {
        checkLength(x, tokens);
        int values = tokens * config.dIn();
        boolean onDevice = !valuesChecked && manager.getDevice().isGpu() && values >= DEVICE_FINITE_CHECK_MIN_VALUES;
        if (!valuesChecked && !onDevice && !allFinite(x, values)) {
            throw nonFinite(x, tokens);
        }
        NDArray input = batch.create(stage(x, tokens), new Shape(tokens, config.dIn()), DataType.FLOAT32)
                .toDevice(manager.getDevice(), false);
        if (onDevice) {
            try (NDArray zeros = input.mul(0f); NDArray sum = zeros.sum()) {
                if (Float.isNaN(sum.getFloat())) {
                    throw nonFinite(x, tokens);
                }
            }
        }
        if (weightType != DataType.FLOAT32) {
            input = input.toType(weightType, false); // engine.gpu_f16: libtorch's matmul wants both operands in one dtype
        }
        return input;
    }

    private Result codes(NDManager batch, NDArray input, boolean reconstruct, boolean keepDecision) {
        DeviceDictionary.Encoded b = base.encode(input, keepDecision);
        if (residual == null) {
            return new Result(b.features(), b.decisionValues(), reconstruct ? base.decode(b) : null);
        }
        NDArray baseRecon = base.decode(b);
        NDArray resIn = residualInput == ComposedSae.ResidualInput.ERROR ? input.sub(baseRecon) : input;
        DeviceDictionary.Encoded r = residual.encode(resIn, keepDecision);
        NDArray features = NDArrays.concat(new NDList(b.features(), r.features()), 1);
        NDArray decision = keepDecision ? NDArrays.concat(new NDList(b.decisionValues(), r.decisionValues()), 1) : null;
        return new Result(features, decision, reconstruct ? baseRecon.add(residual.decode(r)) : null);
    }

    /** Copies the batch into a reusable direct buffer, so DJL gets native memory without a fresh allocation per call. */
    private ByteBuffer stage(float[] x, int tokens) {
        int bytes = tokens * config.dIn() * 4;
        if (staging == null || staging.capacity() < bytes) {
            staging = ByteBuffer.allocateDirect(Math.max(bytes, 1 << 16)).order(ByteOrder.nativeOrder());
        }
        ByteBuffer b = staging.duplicate().order(ByteOrder.nativeOrder());
        b.clear();
        b.asFloatBuffer().put(x, 0, tokens * config.dIn());
        b.limit(bytes);
        return b.slice().order(ByteOrder.nativeOrder());
    }

    private void checkLength(float[] x, int tokens) throws SaeInputException {
        int d = config.dIn();
        if (tokens < 1) {
            throw new SaeInputException(SaeInputException.Reason.EMPTY, -1, "no tokens to encode");
        }
        if (x.length < (long) tokens * d) {
            throw new SaeInputException(SaeInputException.Reason.WRONG_D_IN, -1, tokens + " tokens of d_in " + d + " need "
                    + (long) tokens * d + " values, got " + x.length);
        }
    }

    /**
     * Whether {@code x[0, n)} holds no NaN or infinity: the largest magnitude's bits, compared once at the end, as
     * no branch per value (twice as fast as testing each value in a 9.4M-value batch).
     */
    public static boolean allFinite(float[] x, int n) {
        int largest = 0;
        for (int i = 0; i < n; i++) {
            largest = Math.max(largest, Float.floatToRawIntBits(x[i]) & 0x7fffffff);
        }
        return largest < 0x7f800000; // exponent all ones: infinity or NaN
    }

    /** The error for a batch that is not all finite, naming the first bad token and dimension. */
    private SaeInputException nonFinite(float[] x, int tokens) {
        int d = config.dIn();
        for (int i = 0; i < tokens * d; i++) {
            if (!Float.isFinite(x[i])) {
                return new SaeInputException(SaeInputException.Reason.NON_FINITE, i / d, "token " + i / d + " has a non-finite value ("
                        + x[i] + ") at dimension " + i % d);
            }
        }
        throw new IllegalStateException("a non-finite value was reported but none found");
    }

    /** Checks an input width before copying: a clear error instead of a shape failure inside libtorch. */
    public void checkWidth(int dIn) throws SaeInputException {
        if (dIn != config.dIn()) {
            throw new SaeInputException(SaeInputException.Reason.WRONG_D_IN, -1, "activations have d_in " + dIn + " but the SAE at "
                    + config.path() + " expects d_in " + config.dIn());
        }
    }

    @Override
    public void close() {
        closeColumns();
        base.close();
        if (residual != null) {
            residual.close();
        }
        manager.close();
    }
}
