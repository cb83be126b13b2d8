package io.saeguard.detectors.select;

import io.saeguard.topics.codes.SparseCodes;
import java.util.Arrays;

/**
 * Per-feature statistics of one token set: firing frequency (fraction of tokens with {@code a > 0}),
 * mean activation over all tokens (inactive tokens count as 0, as in the DSG code, §1.1), mean over
 * the tokens where it fires, and the maximum. One pass over the CSR entries.
 */
public final class FeatureStatistics {
    private final int tokens;
    private final double[] fires;
    private final double[] sum;
    private final double[] max;

    private FeatureStatistics(int tokens, int dSae) {
        this.tokens = tokens;
        fires = new double[dSae];
        sum = new double[dSae];
        max = new double[dSae];
    }

    /** Statistics over the listed tokens of {@code codes}. */
    public static FeatureStatistics of(SparseCodes codes, int[] tokenIndices) {
        FeatureStatistics s = new FeatureStatistics(tokenIndices.length, codes.dSae());
        for (int t : tokenIndices) {
            int n = codes.activeCount(t);
            for (int j = 0; j < n; j++) {
                float v = codes.valueAt(t, j);
                if (v > 0) {
                    int f = codes.featureAt(t, j);
                    s.fires[f]++;
                    s.sum[f] += v;
                    s.max[f] = Math.max(s.max[f], v);
                }
            }
        }
        return s;
    }

    public int tokens() {
        return tokens;
    }

    public int dSae() {
        return fires.length;
    }

    /** Fraction of tokens where the feature fires ({@code a > 0}). */
    public double frequency(int f) {
        return tokens == 0 ? 0 : fires[f] / tokens;
    }

    /** Mean activation over all tokens (0 where inactive). */
    public double mean(int f) {
        return tokens == 0 ? 0 : sum[f] / tokens;
    }

    /** Mean activation over the tokens where the feature fires; 0 if it never does. */
    public double meanWhenActive(int f) {
        return fires[f] == 0 ? 0 : sum[f] / fires[f];
    }

    /** Largest activation (0 if it never fires). */
    public double max(int f) {
        return max[f];
    }

    /** The q-quantile (0–1, linear interpolation) of feature f's activation over the listed tokens, zeros included. */
    static double quantile(SparseCodes codes, int[] tokenIndices, int f, double q) {
        double[] v = new double[tokenIndices.length];
        for (int i = 0; i < tokenIndices.length; i++) {
            v[i] = Math.max(0, codes.value(tokenIndices[i], f));
        }
        Arrays.sort(v);
        return percentileOfSorted(v, q * 100);
    }

    /** numpy's default percentile (linear interpolation between closest ranks) of sorted values; p in [0, 100]. */
    static double percentileOfSorted(double[] sorted, double p) {
        if (sorted.length == 0) {
            return 0;
        }
        double rank = p / 100 * (sorted.length - 1);
        int lo = (int) Math.floor(rank);
        int hi = (int) Math.ceil(rank);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
    }

    static double percentile(double[] values, double p) {
        double[] s = values.clone();
        Arrays.sort(s);
        return percentileOfSorted(s, p);
    }
}
