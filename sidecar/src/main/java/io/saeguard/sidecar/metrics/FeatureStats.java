package io.saeguard.sidecar.metrics;

import io.saeguard.topics.codes.SparseCodes;
import java.util.Arrays;
import java.util.Optional;

/**
 * Firing statistics of one SAE's features — the point of the product: they tell an operator when
 * live traffic stops looking like what the SAE was trained on (docs/algorithms.md#feature-metrics). Kept for
 * every feature (a few arrays of {@code d_sae} numbers); the exporter publishes series only for watched and top-N
 * features, so label sets stay bounded.
 *
 * <p>Two sources feed it. <b>Exact</b> counts come from the codes every token is decided on: for an SAE on the
 * watched-feature encode those hold only the watched features ({@link #recordWatched}), so only those features'
 * exact counts are kept; for an SAE encoded whole ({@link #record}) every feature's are. <b>Sampled</b> counts come
 * from the full codes of a sample of tokens ({@link #recordSample}; every token for an SAE encoded whole): what
 * needs every feature — top-N, drift, dead features, the baseline calibration, the rate of an unwatched
 * feature — is computed on them.
 *
 * <ul>
 *   <li>cumulative fires per feature: exact ({@link #fires}) and in the sample ({@link #sampledFires});
 *       tokens seen ({@link #tokens}) and sampled ({@link #sampledTokens});</li>
 *   <li>a recent firing rate per feature: counts decayed exponentially per token with half-life
 *       {@code halfLifeTokens} (tokens of the stream, sampled or not), divided by the equally decayed token
 *       count — exact for features counted exactly, else the sample's;</li>
 *   <li>dead features: no fire seen (exactly or in the sample) in the last {@code deadWindowTokens} tokens
 *       (reported once that many tokens were seen);</li>
 *   <li>drift: Jensen–Shannon divergence (base 2, in [0, 1]) between the sample's live firing distribution
 *       (recent counts normalised to sum 1) and the baseline density (normalised likewise); the
 *       baseline is the SAE's {@code sparsity.safetensors} when it ships one, else the sample's density over
 *       a calibration window (the first {@code calibrationTokens} tokens seen), frozen then;</li>
 *   <li>reconstruction FVU on sampled tokens: Σ‖x − x̂‖² / Σ‖x − x̄‖², over a decayed window.</li>
 * </ul>
 *
 * Thread-safe: the engine thread records, scrapes read; each method holds the object's lock briefly.
 */
public final class FeatureStats {
    private final String sae;
    private final int dSae;
    private final double decayPerToken;
    private final long deadWindowTokens;
    private final long calibrationTokens;
    private float[] baseline; // null until known
    private String baselineSource;
    private long tokens;
    private double recentTokens;
    // Exact counts, kept where exact[f]
    private final boolean[] exact;
    private int[] exactIds = null; // the watched set of the last recordWatched; null while every feature is exact
    private final long[] fires;
    private final double[] recent; // in units of scale (see advance)
    // The sample's counts
    private long sampledTokens;
    private double recentSampledTokens;
    private final long[] sampledFires;
    private final double[] recentSampled; // in units of scale
    // The decayed counts are kept multiplied by scale, which grows by 1/decay per token instead of every count shrinking
    // by decay per token: a record costs O(its active features), not O(d_sae). At 16k features the per-record decay of
    // both arrays was 39 % of the engine thread's samples with one token per record (bench/README.md, 2026-12-07).
    private double scale = 1;
    private final long[] lastFire; // stream index of the last fire seen, exact or sampled
    // FVU accumulators (decayed like the rates, per sampled token)
    private double residualSum;
    private double[] inputSum;
    private double inputSquareSum;
    private double sampled;

    /** Without a calibration window: no baseline unless one is given. */
    public FeatureStats(String sae, int dSae, Optional<float[]> baseline, double halfLifeTokens, long deadWindowTokens) {
        this(sae, dSae, baseline, halfLifeTokens, deadWindowTokens, 0);
    }

    /**
     * @param baseline the SAE's training firing density per feature ({@code sparsity.safetensors}), if it ships one
     * @param calibrationTokens without a baseline, the sample's firing density over the first this-many tokens becomes
     *     the baseline (0: none)
     */
    public FeatureStats(String sae, int dSae, Optional<float[]> baseline, double halfLifeTokens, long deadWindowTokens,
            long calibrationTokens) {
        this.sae = sae;
        this.dSae = dSae;
        this.baseline = baseline.map(float[]::clone).orElse(null);
        this.baselineSource = baseline.isPresent() ? "sparsity" : "none";
        this.calibrationTokens = calibrationTokens;
        this.decayPerToken = Math.pow(0.5, 1.0 / halfLifeTokens);
        this.deadWindowTokens = deadWindowTokens;
        this.exact = new boolean[dSae];
        Arrays.fill(exact, true);
        this.fires = new long[dSae];
        this.recent = new double[dSae];
        this.sampledFires = new long[dSae];
        this.recentSampled = new double[dSae];
        this.lastFire = new long[dSae];
        Arrays.fill(lastFire, -1);
    }

    public String sae() {
        return sae;
    }

    public int dSae() {
        return dSae;
    }

    /**
     * Records a batch's full codes, every feature of every token (an SAE encoded whole): exact counts for every
     * feature, and every token counts as sampled. A feature fires on a token when its code is non-zero.
     */
    public synchronized void record(SparseCodes codes) {
        if (exactIds != null) {
            for (int f = 0; f < dSae; f++) {
                if (!exact[f]) {
                    seedFromSample(f);
                }
            }
            Arrays.fill(exact, true);
            exactIds = null;
        }
        int n = codes.tokens();
        advance(n);
        for (int t = 0; t < n; t++) {
            for (int j = 0; j < codes.activeCount(t); j++) {
                int f = codes.featureAt(t, j);
                fires[f]++;
                recent[f] += scale;
                sampledFires[f]++;
                recentSampled[f] += scale;
                lastFire[f] = tokens + t;
            }
        }
        sampledTokens += n;
        recentSampledTokens += n;
        tokens += n;
        calibrate();
    }

    /**
     * Records a batch's watched-feature codes (every token, only the {@code watched} features, ascending): exact counts
     * for those features. A feature newly watched starts its exact rate from the sample's (so the rate does not
     * restart from zero); its cumulative count goes on from where it stopped, if it was watched before.
     */
    public synchronized void recordWatched(SparseCodes codes, int[] watched) {
        if (!Arrays.equals(watched, exactIds)) {
            boolean[] was = exact.clone();
            Arrays.fill(exact, false);
            for (int f : watched) {
                exact[f] = true;
                if (!was[f]) {
                    seedFromSample(f);
                }
            }
            exactIds = watched.clone();
        }
        int n = codes.tokens();
        advance(n);
        for (int t = 0; t < n; t++) {
            for (int j = 0; j < codes.activeCount(t); j++) {
                int f = codes.featureAt(t, j);
                fires[f]++;
                recent[f] += scale;
                lastFire[f] = tokens + t;
            }
        }
        tokens += n;
        calibrate();
    }

    /**
     * Records the full codes of sampled tokens; token {@code t} of {@code codes} was the stream's token
     * {@code positions[t]} (its index among {@link #tokens()}), and its weight in the recent rates is decayed by the
     * tokens seen since.
     */
    public synchronized void recordSample(SparseCodes codes, long[] positions) {
        for (int t = 0; t < codes.tokens(); t++) {
            double w = Math.pow(decayPerToken, Math.max(0, tokens - 1 - positions[t]));
            for (int j = 0; j < codes.activeCount(t); j++) {
                int f = codes.featureAt(t, j);
                sampledFires[f]++;
                recentSampled[f] += w * scale;
                lastFire[f] = Math.max(lastFire[f], positions[t]);
            }
            recentSampledTokens += w;
        }
        sampledTokens += codes.tokens();
        calibrate();
    }

    /** A feature turning exact starts its exact recent count at the sample's rate (its cumulative count goes on). */
    private void seedFromSample(int f) {
        recent[f] = recentSampledTokens == 0 ? 0 : recentSampled[f] / recentSampledTokens * recentTokens;
    }

    /**
     * Decays every recent count by {@code n} tokens of the stream: the unit {@code scale} grows by {@code 1/decay^n}
     * (the arrays are divided by it when read), and once it passes {@value #RESCALE_AT} the arrays are brought back to
     * unit scale (every ~50M tokens at the default 100k-token half-life).
     */
    private void advance(int n) {
        double decay = Math.pow(decayPerToken, n);
        scale /= decay;
        if (scale > RESCALE_AT) {
            for (int f = 0; f < dSae; f++) {
                recent[f] /= scale;
                recentSampled[f] /= scale;
            }
            scale = 1;
        }
        recentTokens = recentTokens * decay + n;
        recentSampledTokens *= decay;
    }

    private static final double RESCALE_AT = 1e150;

    private void calibrate() {
        if (baseline == null && calibrationTokens > 0 && tokens >= calibrationTokens && sampledTokens > 0) {
            baseline = new float[dSae];
            for (int f = 0; f < dSae; f++) {
                baseline[f] = (float) (sampledFires[f] / (double) sampledTokens);
            }
            baselineSource = "calibration";
        }
    }

    /** Where the baseline density comes from: {@code sparsity} (the SAE's file), {@code calibration} (the first tokens seen) or {@code none} yet. */
    public synchronized String baselineSource() {
        return baselineSource;
    }

    /** Records one sampled token's input and reconstruction for the FVU. */
    public synchronized void recordReconstruction(float[] x, float[] reconstruction) {
        if (inputSum == null) {
            inputSum = new double[x.length];
        }
        double r = 0;
        double sq = 0;
        for (int i = 0; i < x.length; i++) {
            double d = x[i] - reconstruction[i];
            r += d * d;
            sq += (double) x[i] * x[i];
        }
        double decay = 0.999; // per sampled token: the FVU follows the last ~1000 samples
        residualSum = residualSum * decay + r;
        inputSquareSum = inputSquareSum * decay + sq;
        for (int i = 0; i < x.length; i++) {
            inputSum[i] = inputSum[i] * decay + x[i];
        }
        sampled = sampled * decay + 1;
    }

    /** Whether the feature is counted on every token (watched, or every feature of an SAE encoded whole). */
    public synchronized boolean exact(int feature) {
        return exact[feature];
    }

    /** Tokens on which the feature fired, counted on every token while it is {@linkplain #exact exact}. */
    public synchronized long fires(int feature) {
        return fires[feature];
    }

    /** Sampled tokens on which the feature fired. */
    public synchronized long sampledFires(int feature) {
        return sampledFires[feature];
    }

    public synchronized long tokens() {
        return tokens;
    }

    /** Tokens whose full codes were recorded (the sample; every token for an SAE encoded whole). */
    public synchronized long sampledTokens() {
        return sampledTokens;
    }

    /** Recent fraction of tokens on which the feature fired: exact for an {@linkplain #exact exact} feature, else the sample's. */
    public synchronized double fireRate(int feature) {
        if (exact[feature]) {
            return recentTokens == 0 ? 0 : recent[feature] / scale / recentTokens;
        }
        return recentSampledTokens == 0 ? 0 : recentSampled[feature] / scale / recentSampledTokens;
    }

    public synchronized Optional<Double> baselineDensity(int feature) {
        return baseline == null ? Optional.empty() : Optional.of((double) baseline[feature]);
    }

    /** Features with no fire seen in the last {@code deadWindowTokens} tokens; 0 until that many tokens were seen. */
    public synchronized int deadFeatures() {
        if (tokens < deadWindowTokens) {
            return 0;
        }
        int dead = 0;
        for (int f = 0; f < dSae; f++) {
            if (lastFire[f] < tokens - deadWindowTokens) {
                dead++;
            }
        }
        return dead;
    }

    /** JS divergence (base 2) of the sample's live firing distribution from the baseline's; empty without a baseline or data. */
    public synchronized Optional<Double> drift() {
        if (baseline == null || recentSampledTokens == 0) {
            return Optional.empty();
        }
        double liveSum = 0;
        double baseSum = 0;
        float[] b = baseline;
        for (int f = 0; f < dSae; f++) {
            liveSum += recentSampled[f];
            baseSum += b[f];
        }
        if (liveSum == 0 || baseSum == 0) {
            return Optional.empty();
        }
        double js = 0;
        for (int f = 0; f < dSae; f++) {
            double p = recentSampled[f] / liveSum;
            double q = b[f] / baseSum;
            double m = (p + q) / 2;
            if (p > 0) {
                js += 0.5 * p * Math.log(p / m);
            }
            if (q > 0) {
                js += 0.5 * q * Math.log(q / m);
            }
        }
        return Optional.of(Math.max(0, js / Math.log(2)));
    }

    /** Fraction of variance unexplained on the sampled tokens; empty before a sample. */
    public synchronized Optional<Double> fvu() {
        if (sampled == 0) {
            return Optional.empty();
        }
        double meanSquare = 0;
        for (double s : inputSum) {
            meanSquare += (s / sampled) * (s / sampled);
        }
        // Σ‖x − x̄‖² = Σ‖x‖² − n‖x̄‖²
        double total = inputSquareSum - sampled * meanSquare;
        return total <= 0 ? Optional.empty() : Optional.of(residualSum / total);
    }

    /** The {@code n} features with the highest recent firing counts in the sample, most frequent first. */
    public synchronized int[] topFeatures(int n) {
        Integer[] ids = new Integer[dSae];
        for (int f = 0; f < dSae; f++) {
            ids[f] = f;
        }
        Arrays.sort(ids, (a, b) -> Double.compare(recentSampled[b], recentSampled[a]));
        int k = Math.min(n, dSae);
        int[] out = new int[k];
        int m = 0;
        for (int i = 0; i < k && recentSampled[ids[i]] > 0; i++) {
            out[m++] = ids[i];
        }
        return Arrays.copyOf(out, m);
    }
}
