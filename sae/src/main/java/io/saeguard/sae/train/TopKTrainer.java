package io.saeguard.sae.train;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.training.GradientCollector;
import io.saeguard.sae.engine.DjlRuntime;
import io.saeguard.sae.engine.EngineOptions;
import io.saeguard.sae.engine.SaeEngine;
import java.io.IOException;
import java.nio.FloatBuffer;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Random;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Trains a TopK SAE with DJL's autograd on the PyTorch engine (Gao et al., "Scaling and evaluating
 * sparse autoencoders", arXiv 2406.04093; EleutherAI sparsify's trainer; docs/algorithms.md#training-topk-saes):
 *
 * <pre>
 *   z  = TopK(ReLU((x − b_dec) · W_enc + b_enc), k)        x: [n, d_in], W_enc: [d_in, d_sae]
 *   x̂  = z · W_dec + b_dec                                  W_dec: [d_sae, d_in], unit-norm rows
 *   loss = ‖x − x̂‖² / ‖x − mean(x)‖²  +  α · AuxK           (both normalised by the batch's variance)
 * </pre>
 *
 * AuxK revives dead latents (not fired for {@link TrainingOptions#effectiveDeadAfterTokens} rows):
 * the top {@code k_aux} of the dead latents' activations reconstruct the main reconstruction's error
 * {@code e = x − x̂} (held fixed) without bias, {@code AuxK = ‖e − z_aux · W_dec‖² / ‖x − mean(x)‖²},
 * scaled down by {@code min(dead / k_aux, 1)} when few latents are dead (sparsify). After each
 * backward pass the gradient component parallel to each decoder row is removed, Adam (as
 * {@code torch.optim.Adam}) steps, and the rows are renormalised to unit norm. Initialisation:
 * Gaussian decoder rows scaled to unit norm, {@code W_enc = W_decᵀ}, {@code b_enc = 0}, {@code b_dec}
 * the geometric median of up to {@value #MEDIAN_ROWS} training rows. Everything random derives from
 * the seed, so a run is reproducible on the same machine and thread count.
 *
 * <p>The encode rule equals the runtime's TopK encoder (top k of the pre-activation, then ReLU):
 * the two differ only in which zeros they call "kept" when fewer than k pre-activations are positive.
 *
 * <p><b>Threading.</b> Confined to the thread that created it, like {@code SaeEngine} (the same
 * thread may own both). Closing frees the parameters.
 *
 * <p>Size: about 450 lines, one class on purpose: the training loop, its DJL parameters and optimiser state, dead-latent
 * tracking and the held-out evaluation all live on one engine-confined set of NDArrays.
 */
@SuppressWarnings("try") // NDScope is opened for its close(), which frees every array the block created
public final class TopKTrainer implements AutoCloseable {
    private static final Logger LOGGER = LoggerFactory.getLogger(TopKTrainer.class);
    static final int MEDIAN_ROWS = 8192;
    // Scalars reach libtorch as float: a double becomes a float64 0-dim tensor, which promotes 0-dim results to float64.
    private static final double BETA1 = 0.9;
    private static final double BETA2 = 0.999;
    private static final double EPSILON = 1e-8;

    private final TrainingOptions options;
    private final int dIn;
    private final int dSae;
    private final Engine engine;
    private final NDManager manager;
    private final NDArray wEnc; // [d_in, d_sae]
    private final NDArray bEnc; // [d_sae]
    private final NDArray wDec; // [d_sae, d_in]
    private final NDArray bDec; // [d_in]
    private final List<AdamSlot> slots;
    private final Thread owner;
    private long adamSteps;

    /** One parameter and Adam's first and second moment estimates for it. */
    private record AdamSlot(NDArray parameter, NDArray m, NDArray v) {
    }

    /** One forward pass: ReLU'd pre-activations, codes and reconstruction, all {@code [n, ·]}. */
    private record Forward(NDArray acts, NDArray codes, NDArray reconstruction) {
    }

    /** What one optimiser step measured. */
    private record StepStats(double loss, double fvu, double auxK, double l0) {
    }

    /** Dense codes {@code [rows, d_sae]} and reconstruction {@code [rows, d_in]}, row-major. */
    public record Dense(float[] codes, float[] reconstruction) {
    }

    private TopKTrainer(Engine engine, Device device, int dIn, TrainingOptions options) {
        this.options = options;
        this.dIn = dIn;
        this.dSae = options.dSae();
        this.engine = engine;
        this.manager = engine.newBaseManager(device);
        this.owner = Thread.currentThread();
        Random random = new Random(options.seed());
        float[] dec = new float[dSae * dIn];
        for (int f = 0; f < dSae; f++) {
            double norm = 0;
            for (int j = 0; j < dIn; j++) {
                float v = (float) random.nextGaussian();
                dec[f * dIn + j] = v;
                norm += (double) v * v;
            }
            float inv = (float) (1 / Math.sqrt(norm));
            for (int j = 0; j < dIn; j++) {
                dec[f * dIn + j] *= inv;
            }
        }
        float[] enc = new float[dIn * dSae];
        for (int f = 0; f < dSae; f++) {
            for (int j = 0; j < dIn; j++) {
                enc[j * dSae + f] = dec[f * dIn + j];
            }
        }
        this.wEnc = parameter(enc, new Shape(dIn, dSae));
        this.bEnc = parameter(new float[dSae], new Shape(dSae));
        this.wDec = parameter(dec, new Shape(dSae, dIn));
        this.bDec = manager.create(new float[dIn], new Shape(dIn));
        if (options.decoderBias()) {
            bDec.setRequiresGradient(true);
            this.slots = List.of(slot(wEnc), slot(bEnc), slot(wDec), slot(bDec));
        } else {
            this.slots = List.of(slot(wEnc), slot(bEnc), slot(wDec));
        }
    }

    /**
     * Starts DJL (offline, see {@code DjlRuntime}) on the device {@code engineOptions} names and
     * initialises an SAE for rows of width {@code dIn}.
     */
    public static TopKTrainer create(EngineOptions engineOptions, int dIn, TrainingOptions options) {
        if (dIn < 1) {
            throw new IllegalArgumentException("d_in must be >= 1, got " + dIn);
        }
        Engine engine = DjlRuntime.configure(engineOptions);
        return new TopKTrainer(engine, SaeEngine.resolve(engineOptions.device(), engine), dIn, options);
    }

    private NDArray parameter(float[] values, Shape shape) {
        NDArray a = manager.create(values, shape);
        a.setRequiresGradient(true);
        return a;
    }

    private AdamSlot slot(NDArray p) {
        return new AdamSlot(p, manager.zeros(p.getShape()), manager.zeros(p.getShape()));
    }

    public TrainingOptions options() {
        return options;
    }

    public int dIn() {
        return dIn;
    }

    /** Optimiser steps made so far. */
    public long steps() {
        return adamSteps;
    }

    /**
     * Trains on {@code source} for {@link TrainingOptions#steps()} steps or
     * {@link TrainingOptions#epochs()} passes, then measures the result over all training rows
     * (FVU, L0, firing density) and over {@code heldOut} when given.
     *
     * <p>A pass's last partial batch is used when it holds at least half a batch (or is the pass's
     * only batch); smaller tails are dropped, since the loss is normalised by the batch's variance.
     *
     * @throws ActivationDataException when a source's width is not {@code d_in} or a pass yields no
     *     batch of at least 2 rows
     */
    public TrainingResult train(ActivationSource source, Optional<ActivationSource> heldOut, TrainingListener listener)
            throws IOException {
        checkThread();
        checkWidth(source);
        if (heldOut.isPresent()) {
            checkWidth(heldOut.get());
        }
        int batch = options.batchSize();
        OptionalLong totalSteps = options.steps();
        if (totalSteps.isEmpty() && source.rows().isPresent()) {
            totalSteps = OptionalLong.of(options.epochs() * batchesPerPass(source.rows().getAsLong(), batch));
        }
        OptionalLong totalRows = totalSteps.isPresent() ? OptionalLong.of(totalSteps.getAsLong() * batch) : OptionalLong.empty();
        long deadAfter = options.effectiveDeadAfterTokens(totalRows);
        int reportEvery = options.reportEvery() > 0 ? options.reportEvery()
                : (int) Math.max(1, totalSteps.isPresent() ? totalSteps.getAsLong() / 100 : 100);
        LOGGER.atInfo().addKeyValue("source", source.describe()).addKeyValue("dIn", dIn).addKeyValue("dSae", dSae)
                .addKeyValue("k", options.k()).addKeyValue("batch", batch).addKeyValue("steps", totalSteps.isPresent() ? totalSteps.getAsLong() : "unknown")
                .addKeyValue("lr", options.effectiveLearningRate()).addKeyValue("auxKAlpha", options.auxKAlpha())
                .addKeyValue("kAux", options.effectiveAuxK(dIn)).addKeyValue("deadAfterTokens", deadAfter)
                .addKeyValue("seed", options.seed()).addKeyValue("device", manager.getDevice()).log("training TopK SAE");

        if (options.decoderBias()) {
            listener.phase("initialising b_dec to the geometric median of up to " + MEDIAN_ROWS + " rows");
            initDecoderBias(source);
        }
        long[] sinceFired = new long[dSae];
        float[] buf = new float[batch * dIn];
        long step = 0;
        long rows = 0;
        int epoch = 0;
        double[] window = new double[4];
        int windowSteps = 0;
        double lastLoss = Double.NaN;
        long t0 = System.nanoTime();
        training:
        while (options.steps().isPresent() || epoch < options.epochs()) {
            int batchesThisPass = 0;
            try (ActivationSource.Pass pass = source.pass(passSeed(epoch))) {
                int m;
                while ((m = pass.next(buf, batch)) > 0) {
                    if (m < 2 || (m < batch && batchesThisPass > 0 && 2 * m < batch)) {
                        break;
                    }
                    StepStats s = step(buf, m, sinceFired, deadAfter);
                    step++;
                    rows += m;
                    batchesThisPass++;
                    window[0] += s.loss();
                    window[1] += s.fvu();
                    window[2] += s.auxK();
                    window[3] += s.l0();
                    windowSteps++;
                    boolean last = totalSteps.isPresent() && step >= totalSteps.getAsLong();
                    if (step % reportEvery == 0 || last) {
                        lastLoss = window[0] / windowSteps;
                        listener.progress(new TrainingProgress(step, totalSteps, rows, epoch, lastLoss, window[1] / windowSteps,
                                window[2] / windowSteps, window[3] / windowSteps, countDead(sinceFired, deadAfter),
                                (System.nanoTime() - t0) / 1e9));
                        java.util.Arrays.fill(window, 0);
                        windowSteps = 0;
                    }
                    if (options.steps().isPresent() && step >= options.steps().getAsLong()) {
                        break training;
                    }
                }
            }
            if (batchesThisPass == 0) {
                throw new ActivationDataException(source.describe() + ": a pass yielded no batch of at least 2 rows");
            }
            epoch++;
        }
        if (windowSteps > 0) {
            lastLoss = window[0] / windowSteps;
            listener.progress(new TrainingProgress(step, totalSteps, rows, epoch, lastLoss, window[1] / windowSteps,
                    window[2] / windowSteps, window[3] / windowSteps, countDead(sinceFired, deadAfter), (System.nanoTime() - t0) / 1e9));
        }
        double seconds = (System.nanoTime() - t0) / 1e9;

        listener.phase("measuring FVU, L0 and firing density over the training rows");
        ReconstructionStats trainStats = measure(source);
        Optional<ReconstructionQuality> held = Optional.empty();
        if (heldOut.isPresent()) {
            listener.phase("measuring FVU and L0 over the held-out rows");
            held = Optional.of(measure(heldOut.get()).quality());
        }
        ReconstructionQuality trainQuality = trainStats.quality();
        LOGGER.atInfo().addKeyValue("steps", step).addKeyValue("rows", rows).addKeyValue("seconds", seconds)
                .addKeyValue("trainFvu", trainQuality.fvu()).addKeyValue("trainL0", trainQuality.l0())
                .addKeyValue("deadLatents", trainQuality.deadLatents())
                .addKeyValue("heldOutFvu", held.map(q -> (Object) q.fvu()).orElse("none")).log("training done");
        return new TrainingResult(step, rows, seconds, lastLoss, trainQuality, held, trainStats.log10Density());
    }

    static long batchesPerPass(long rows, int batch) {
        long full = rows / batch;
        long tail = rows % batch;
        if (full == 0) {
            return tail >= 2 ? 1 : 0;
        }
        return full + (2 * tail >= batch ? 1 : 0);
    }

    private long passSeed(int epoch) {
        // SplitMix64's increment: distinct, well-mixed seeds per pass from one user seed.
        return options.seed() + 0x9E3779B97F4A7C15L * (epoch + 1L);
    }

    private void checkWidth(ActivationSource s) throws ActivationDataException {
        if (s.dIn() != dIn) {
            throw new ActivationDataException(s.describe() + ": rows have d_in " + s.dIn() + " but the SAE being trained has d_in " + dIn);
        }
    }

    private static int countDead(long[] sinceFired, long deadAfter) {
        int n = 0;
        for (long s : sinceFired) {
            if (s >= deadAfter) {
                n++;
            }
        }
        return n;
    }

    private void initDecoderBias(ActivationSource source) throws IOException {
        float[] rows = new float[MEDIAN_ROWS * dIn];
        int n;
        try (ActivationSource.Pass pass = source.pass(passSeed(-1))) {
            n = pass.next(rows, MEDIAN_ROWS);
        }
        if (n == 0) {
            throw new ActivationDataException(source.describe() + ": no rows");
        }
        float[] median = GeometricMedian.of(rows, n, dIn, 100, 1e-6);
        try (NDScope scope = new NDScope()) {
            // In place, as every parameter update: NDArray.set makes libtorch warn about a deprecated dispatch mode.
            bDec.muli(0f).addi(manager.create(median));
        }
    }

    private NDArray input(float[] buf, int rows) {
        return manager.create(FloatBuffer.wrap(buf, 0, rows * dIn).slice(), new Shape(rows, dIn));
    }

    private Forward forward(NDArray x) {
        int k = options.k();
        NDArray pre = x.sub(bDec).matMul(wEnc).add(bEnc); // [n, d_sae]
        NDArray acts = Activation.relu(pre);
        NDArray kth = acts.topK(k, 1, true, true).get(0).get(":, " + (k - 1) + ":" + k); // [n, 1]
        NDArray codes = acts.mul(acts.gte(kth));
        return new Forward(acts, codes, codes.matMul(wDec).add(bDec)); // [n, d_in]
    }

    private StepStats step(float[] buf, int rows, long[] sinceFired, long deadAfter) {
        float[] deadPenalty = new float[dSae];
        int dead = 0;
        for (int f = 0; f < dSae; f++) {
            if (sinceFired[f] >= deadAfter) {
                dead++;
            } else {
                deadPenalty[f] = -1e30f; // live latents never win the AuxK top-k
            }
        }
        boolean auxK = dead > 0 && options.auxKAlpha() > 0;
        try (NDScope scope = new NDScope()) {
            NDArray x = input(buf, rows);
            Forward f;
            NDArray loss;
            NDArray fvu;
            NDArray aux = null;
            try (GradientCollector collector = engine.newGradientCollector()) {
                f = forward(x);
                NDArray totalVariance = x.sub(x.mean(new int[] {0}, true)).square().sum();
                NDArray error = x.sub(f.reconstruction());
                fvu = error.square().sum().div(totalVariance);
                loss = fvu;
                if (auxK) {
                    int kAuxMax = options.effectiveAuxK(dIn);
                    int kAux = Math.min(kAuxMax, dead);
                    double scale = Math.min(dead / (double) kAuxMax, 1.0);
                    NDArray scores = f.acts().add(manager.create(deadPenalty));
                    NDArray kth = scores.topK(kAux, 1, true, true).get(0).get(":, " + (kAux - 1) + ":" + kAux);
                    NDArray auxCodes = f.acts().mul(scores.gte(kth));
                    NDArray errorHat = auxCodes.matMul(wDec); // no b_dec: the error has none
                    aux = errorHat.sub(error.stopGradient()).square().sum().div(totalVariance).mul((float) scale);
                    loss = fvu.add(aux.mul((float) options.auxKAlpha()));
                }
                collector.backward(loss);
            }
            long[] fired = f.codes().gt(0f).sum(new int[] {0}).toLongArray();
            long active = 0;
            for (int i = 0; i < dSae; i++) {
                active += fired[i];
                sinceFired[i] = fired[i] > 0 ? 0 : sinceFired[i] + rows;
            }
            StepStats stats = new StepStats(loss.getFloat(), fvu.getFloat(), aux == null ? 0 : aux.getFloat(), (double) active / rows);
            applyGradients();
            return stats;
        }
    }

    private void applyGradients() {
        adamSteps++;
        double lr = options.effectiveLearningRate();
        double correction1 = 1 - Math.pow(BETA1, adamSteps);
        double correction2 = Math.sqrt(1 - Math.pow(BETA2, adamSteps));
        for (AdamSlot s : slots) {
            NDArray g = s.parameter().getGradient();
            if (s.parameter() == wDec) {
                // The row norm is fixed at 1, so only the direction learns: drop the radial component (sparsify).
                g.subi(g.mul(wDec).sum(new int[] {1}, true).mul(wDec));
            }
            s.m().muli((float) BETA1).addi(g.mul((float) (1 - BETA1)));
            s.v().muli((float) BETA2).addi(g.square().mul((float) (1 - BETA2)));
            NDArray denominator = s.v().sqrt().div((float) correction2).add((float) EPSILON);
            s.parameter().subi(s.m().div(denominator).mul((float) (lr / correction1)));
            g.subi(g); // PyTorch accumulates gradients across backward passes
        }
        wDec.divi(wDec.square().sum(new int[] {1}, true).sqrt().add(1e-12f));
    }

    private ReconstructionStats measure(ActivationSource source) throws IOException {
        ReconstructionStats stats = new ReconstructionStats(dIn, dSae);
        int batch = options.batchSize();
        float[] buf = new float[batch * dIn];
        try (ActivationSource.Pass pass = source.pass(passSeed(0))) {
            int m;
            while ((m = pass.next(buf, batch)) > 0) {
                try (NDScope scope = new NDScope()) {
                    NDArray x = input(buf, m);
                    Forward f = forward(x);
                    NDArray x64 = x.toType(DataType.FLOAT64, false);
                    float[] sums = x.sum(new int[] {0}).toFloatArray();
                    double[] sumX = new double[dIn];
                    for (int j = 0; j < dIn; j++) {
                        sumX[j] = sums[j];
                    }
                    double squares = x64.square().sum().getDouble();
                    double error = x64.sub(f.reconstruction().toType(DataType.FLOAT64, false)).square().sum().getDouble();
                    long[] fired = f.codes().gt(0f).sum(new int[] {0}).toLongArray();
                    long active = 0;
                    for (long c : fired) {
                        active += c;
                    }
                    stats.addReduced(m, sumX, squares, error, active, fired);
                }
            }
        }
        return stats;
    }

    /** The current parameters' forward pass over {@code rows} rows of {@code x} (for checks and tools). */
    public Dense encode(float[] x, int rows) {
        checkThread();
        try (NDScope scope = new NDScope()) {
            Forward f = forward(input(x, rows));
            return new Dense(f.codes().toFloatArray(), f.reconstruction().toFloatArray());
        }
    }

    /** The current parameters, copied to the heap. */
    public TopKWeights weights() {
        checkThread();
        return new TopKWeights(dIn, dSae, options.k(), wEnc.toFloatArray(), bEnc.toFloatArray(), wDec.toFloatArray(), bDec.toFloatArray());
    }

    private void checkThread() {
        if (Thread.currentThread() != owner) {
            throw new IllegalStateException("TopKTrainer is confined to thread '" + owner.getName() + "', called from '"
                    + Thread.currentThread().getName() + "'");
        }
    }

    @Override
    public void close() {
        manager.close();
    }
}
