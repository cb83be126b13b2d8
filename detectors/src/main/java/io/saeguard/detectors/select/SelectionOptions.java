package io.saeguard.detectors.select;

import java.util.Objects;
import java.util.OptionalInt;

/**
 * What {@link FeatureSelection} does. Defaults follow the DSG code (docs/algorithms.md#dsg-importance: ratio
 * percentile 95, forget-score floor percentile 5, N = 20, τ at the 95th percentile).
 *
 * @param detectorId         id of the detector to write
 * @param sae                SAE id to write into the detector
 * @param method             how features are ranked
 * @param rule               which rule to write
 * @param topN               how many features to keep, {@code >= 1}
 * @param ratioPercentile    DSG: keep features whose importance ratio is at or above this percentile (0–100)
 * @param floorPercentile    DSG: keep features whose forget score is at or above this percentile (0–100)
 * @param randomRateLimit    LangFIR (§6): drop features firing on at least this fraction of random tokens
 * @param tauPercentile      dsg rule: τ sits just above this percentile of the negatives' ρ (0–100)
 * @param window             dsg rule: the windowed variant with this window
 * @param thresholdQuantile  features rule: a feature's threshold is at least this quantile (0–1) of its
 *                           activation over negative tokens (1 = the maximum)
 * @param holdoutFraction    fraction of each class's examples held out for evaluation, in (0, 1)
 * @param seed               seed of the held-out split
 * @param l2                 L2 penalty of the probes (standardised inputs) when one λ is given; {@code select --l2} with
 *                           several values chooses each probe's on training folds ({@link L2Grid})
 * @param skipFirstToken     whether each example's first token is a BOS to skip
 */
public record SelectionOptions(String detectorId, String sae, Method method, RuleChoice rule, int topN,
        double ratioPercentile, double floorPercentile, double randomRateLimit, double tauPercentile,
        OptionalInt window, double thresholdQuantile, double holdoutFraction, long seed, double l2,
        boolean skipFirstToken) {

    /** How features are ranked. */
    public enum Method {
        /** DSG importance: squared mean activations, ratio percentile and top N by forget score (§1.1). */
        DSG,
        /** Mean difference {@code mean(a | positive) − mean(a | negative)} (the sparse-probing ranking, §8). */
        MEAN_DIFF
    }

    /** Which rule the written detector uses. */
    public enum RuleChoice {
        /** {@code features}, match any, a threshold per feature, aggregate max. */
        FEATURES,
        /** {@code dsg} with τ calibrated on the negatives. */
        DSG,
        /** {@code probe}: a sparse logistic probe on mean-pooled SAE codes ({@link TextSelection}). */
        PROBE,
        /** {@code raw-probe}: the dense logistic probe on mean-pooled activations ({@link TextSelection}). */
        RAW_PROBE
    }

    public SelectionOptions {
        Objects.requireNonNull(detectorId, "detectorId");
        Objects.requireNonNull(sae, "sae");
        Objects.requireNonNull(method, "method");
        Objects.requireNonNull(rule, "rule");
        Objects.requireNonNull(window, "window");
        if (topN < 1) {
            throw new IllegalArgumentException("topN must be >= 1");
        }
        for (double p : new double[] {ratioPercentile, floorPercentile, tauPercentile}) {
            if (!(p >= 0 && p <= 100)) {
                throw new IllegalArgumentException("percentiles must be in [0, 100], got " + p);
            }
        }
        if (!(randomRateLimit > 0 && randomRateLimit <= 1)) {
            throw new IllegalArgumentException("randomRateLimit must be in (0, 1], got " + randomRateLimit);
        }
        if (!(thresholdQuantile >= 0 && thresholdQuantile <= 1)) {
            throw new IllegalArgumentException("thresholdQuantile must be in [0, 1], got " + thresholdQuantile);
        }
        if (!(holdoutFraction > 0 && holdoutFraction < 1)) {
            throw new IllegalArgumentException("holdoutFraction must be in (0, 1), got " + holdoutFraction);
        }
        if (window.isPresent() && window.getAsInt() < 1) {
            throw new IllegalArgumentException("window must be >= 1");
        }
        if (!(l2 >= 0)) {
            throw new IllegalArgumentException("l2 must be >= 0");
        }
    }

    /** DSG ranking, dsg rule, N = 20, ratio P95, floor P5, LangFIR at 1 %, τ at P95, 25 % held out, seed 42. */
    public static SelectionOptions defaults(String detectorId, String sae) {
        return new SelectionOptions(detectorId, sae, Method.DSG, RuleChoice.DSG, 20, 95, 5, 0.01, 95, OptionalInt.empty(),
                1.0, 0.25, 42, 1e-2, false);
    }

    public SelectionOptions withMethod(Method m) {
        return new SelectionOptions(detectorId, sae, m, rule, topN, ratioPercentile, floorPercentile, randomRateLimit,
                tauPercentile, window, thresholdQuantile, holdoutFraction, seed, l2, skipFirstToken);
    }

    public SelectionOptions withRule(RuleChoice r) {
        return new SelectionOptions(detectorId, sae, method, r, topN, ratioPercentile, floorPercentile, randomRateLimit,
                tauPercentile, window, thresholdQuantile, holdoutFraction, seed, l2, skipFirstToken);
    }

    public SelectionOptions withTopN(int n) {
        return new SelectionOptions(detectorId, sae, method, rule, n, ratioPercentile, floorPercentile, randomRateLimit,
                tauPercentile, window, thresholdQuantile, holdoutFraction, seed, l2, skipFirstToken);
    }

    public SelectionOptions withRatioPercentile(double p) {
        return new SelectionOptions(detectorId, sae, method, rule, topN, p, floorPercentile, randomRateLimit,
                tauPercentile, window, thresholdQuantile, holdoutFraction, seed, l2, skipFirstToken);
    }

    public SelectionOptions withRandomRateLimit(double rate) {
        return new SelectionOptions(detectorId, sae, method, rule, topN, ratioPercentile, floorPercentile, rate,
                tauPercentile, window, thresholdQuantile, holdoutFraction, seed, l2, skipFirstToken);
    }

    public SelectionOptions withTauPercentile(double p) {
        return new SelectionOptions(detectorId, sae, method, rule, topN, ratioPercentile, floorPercentile, randomRateLimit,
                p, window, thresholdQuantile, holdoutFraction, seed, l2, skipFirstToken);
    }

    public SelectionOptions withWindow(int w) {
        return new SelectionOptions(detectorId, sae, method, rule, topN, ratioPercentile, floorPercentile, randomRateLimit,
                tauPercentile, OptionalInt.of(w), thresholdQuantile, holdoutFraction, seed, l2, skipFirstToken);
    }

    public SelectionOptions withThresholdQuantile(double q) {
        return new SelectionOptions(detectorId, sae, method, rule, topN, ratioPercentile, floorPercentile, randomRateLimit,
                tauPercentile, window, q, holdoutFraction, seed, l2, skipFirstToken);
    }

    public SelectionOptions withHoldout(double fraction, long splitSeed) {
        return new SelectionOptions(detectorId, sae, method, rule, topN, ratioPercentile, floorPercentile, randomRateLimit,
                tauPercentile, window, thresholdQuantile, fraction, splitSeed, l2, skipFirstToken);
    }

    public SelectionOptions withSkipFirstToken(boolean skip) {
        return new SelectionOptions(detectorId, sae, method, rule, topN, ratioPercentile, floorPercentile, randomRateLimit,
                tauPercentile, window, thresholdQuantile, holdoutFraction, seed, l2, skip);
    }

    public SelectionOptions withL2(double lambda) {
        return new SelectionOptions(detectorId, sae, method, rule, topN, ratioPercentile, floorPercentile, randomRateLimit,
                tauPercentile, window, thresholdQuantile, holdoutFraction, seed, lambda, skipFirstToken);
    }
}
