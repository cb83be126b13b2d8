package io.saeguard.sidecar.metrics;

import io.saeguard.topics.codes.SparseCodes;
import java.util.Arrays;
import java.util.Optional;

/**
 * Firing statistics of one SAE's features — the point of the product: they tell an operator when
 * live traffic stops looking like what the SAE was trained on. Kept for every feature (a few
 * arrays of {@code d_sae} numbers); the exporter publishes series only for watched and top-N
 * features, so label sets stay bounded.
 *
 * <ul>
 *   <li>cumulative fires per feature and tokens seen;</li>
 *   <li>a recent firing rate per feature: counts decayed exponentially per token with half-life
 *       {@code halfLifeTokens}, divided by the equally decayed token count;</li>
 *   <li>dead features: no fire in the last {@code deadWindowTokens} tokens (reported once that many
 *       tokens were seen);</li>
 *   <li>drift: Jensen–Shannon divergence (base 2, in [0, 1]) between the live firing distribution
 *       (recent counts normalised to sum 1) and the baseline density (normalised likewise); the
 *       baseline is the SAE's {@code sparsity.safetensors} when it ships one, else the density over
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
    private final long[] fires;
    private final long[] lastFire;
    private final double[] recent;
    private double recentTokens;
    private long tokens;
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
     * @param calibrationTokens without a baseline, the firing density over the first this-many tokens becomes
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
        this.fires = new long[dSae];
        this.lastFire = new long[dSae];
        Arrays.fill(lastFire, -1);
        this.recent = new double[dSae];
    }

    public String sae() {
        return sae;
    }

    public int dSae() {
        return dSae;
    }

    /** Records a batch's codes: a feature fires on a token when its code is non-zero. */
    public synchronized void record(SparseCodes codes) {
        int n = codes.tokens();
        double decay = Math.pow(decayPerToken, n);
        for (int f = 0; f < dSae; f++) {
            recent[f] *= decay;
        }
        recentTokens = recentTokens * decay + n;
        for (int t = 0; t < n; t++) {
            for (int j = 0; j < codes.activeCount(t); j++) {
                int f = codes.featureAt(t, j);
                fires[f]++;
                recent[f] += 1;
                lastFire[f] = tokens + t;
            }
        }
        tokens += n;
        if (baseline == null && calibrationTokens > 0 && tokens >= calibrationTokens) {
            baseline = new float[dSae];
            for (int f = 0; f < dSae; f++) {
                baseline[f] = (float) (fires[f] / (double) tokens);
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

    public synchronized long fires(int feature) {
        return fires[feature];
    }

    public synchronized long tokens() {
        return tokens;
    }

    /** Recent fraction of tokens on which the feature fired. */
    public synchronized double fireRate(int feature) {
        return recentTokens == 0 ? 0 : recent[feature] / recentTokens;
    }

    public synchronized Optional<Double> baselineDensity(int feature) {
        return baseline == null ? Optional.empty() : Optional.of((double) baseline[feature]);
    }

    /** Features with no fire in the last {@code deadWindowTokens} tokens; 0 until that many tokens were seen. */
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

    /** JS divergence (base 2) of the live firing distribution from the baseline's; empty without a baseline or data. */
    public synchronized Optional<Double> drift() {
        if (baseline == null || recentTokens == 0) {
            return Optional.empty();
        }
        double liveSum = 0;
        double baseSum = 0;
        float[] b = baseline;
        for (int f = 0; f < dSae; f++) {
            liveSum += recent[f];
            baseSum += b[f];
        }
        if (liveSum == 0 || baseSum == 0) {
            return Optional.empty();
        }
        double js = 0;
        for (int f = 0; f < dSae; f++) {
            double p = recent[f] / liveSum;
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

    /** The {@code n} features with the highest recent firing counts, most frequent first. */
    public synchronized int[] topFeatures(int n) {
        Integer[] ids = new Integer[dSae];
        for (int f = 0; f < dSae; f++) {
            ids[f] = f;
        }
        Arrays.sort(ids, (a, b) -> Double.compare(recent[b], recent[a]));
        int k = Math.min(n, dSae);
        int[] out = new int[k];
        int m = 0;
        for (int i = 0; i < k && recent[ids[i]] > 0; i++) {
            out[m++] = ids[i];
        }
        return Arrays.copyOf(out, m);
    }
}
