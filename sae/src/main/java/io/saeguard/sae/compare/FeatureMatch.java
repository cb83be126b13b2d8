package io.saeguard.sae.compare;

/**
 * For each feature of SAE A, its best counterpart in SAE B by some similarity.
 *
 * @param best  per A feature, the B feature with the highest similarity; -1 where A's feature has none (dead)
 * @param score per A feature, that similarity; NaN where {@code best} is -1
 */
public record FeatureMatch(int[] best, double[] score) {
    public FeatureMatch {
        if (best.length != score.length) {
            throw new IllegalArgumentException("best has " + best.length + " entries but score " + score.length);
        }
    }

    /** A features with a match. */
    public int matched() {
        int n = 0;
        for (int b : best) {
            n += b >= 0 ? 1 : 0;
        }
        return n;
    }

    /** Mean score over the matched A features; NaN when none. */
    public double mean() {
        double s = 0;
        int n = 0;
        for (int i = 0; i < best.length; i++) {
            if (best[i] >= 0) {
                s += score[i];
                n++;
            }
        }
        return n == 0 ? Double.NaN : s / n;
    }

    /** Matched A features whose score is at least {@code threshold}. */
    public int atLeast(double threshold) {
        int n = 0;
        for (int i = 0; i < best.length; i++) {
            n += best[i] >= 0 && score[i] >= threshold ? 1 : 0;
        }
        return n;
    }
}
