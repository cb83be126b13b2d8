package io.saeguard.detectors.select;

import java.util.Arrays;

/**
 * Thresholds for a target false-positive rate (docs/algorithms.md#text-selection).
 *
 * <p>With {@code n} negative scores and a target FPR {@code α}, at most {@code a = ⌊α n⌋} negatives may reach the
 * threshold. Sorting the negatives descending, {@code s_(a+1)} is the (a+1)-th largest; every threshold strictly
 * above it lets at most {@code a} negatives through. {@link #thresholdAtFpr} writes the smallest 4-significant-digit
 * number strictly above it (a readable YAML value; ties at {@code s_(a+1)} never fire).
 */
public final class Calibration {
    private Calibration() {}

    /**
     * The policy threshold: the smallest 4-significant-digit number strictly above the (⌊α n⌋+1)-th largest negative
     * score, so that at most ⌊α n⌋ of these negatives score at or above it.
     *
     * @throws IllegalArgumentException without negatives or with α outside (0, 1)
     */
    public static double thresholdAtFpr(double[] negativeScores, double targetFpr) {
        double s = orderStatistic(negativeScores, targetFpr);
        return s > 0 ? FeatureSelection.roundUpAbove(s) : s == 0 ? Double.MIN_VALUE : roundUpAboveNegative(s);
    }

    /**
     * TPR at a target FPR with the threshold taken from these negatives (an oracle on the evaluated set, as eval
     * reports it): the fraction of positives scoring strictly above the (⌊α n⁻⌋+1)-th largest negative.
     */
    public static double tprAtFpr(double[] scores, boolean[] labels, double targetFpr) {
        int neg = 0;
        for (boolean l : labels) {
            neg += l ? 0 : 1;
        }
        double[] negatives = new double[neg];
        int k = 0;
        for (int i = 0; i < scores.length; i++) {
            if (!labels[i]) {
                negatives[k++] = scores[i];
            }
        }
        double cut = orderStatistic(negatives, targetFpr);
        int pos = 0;
        int above = 0;
        for (int i = 0; i < scores.length; i++) {
            if (labels[i]) {
                pos++;
                above += scores[i] > cut ? 1 : 0;
            }
        }
        if (pos == 0) {
            throw new IllegalArgumentException("TPR needs at least one positive");
        }
        return above / (double) pos;
    }

    /** The (⌊α n⌋+1)-th largest score. */
    static double orderStatistic(double[] negativeScores, double targetFpr) {
        if (negativeScores.length == 0) {
            throw new IllegalArgumentException("calibration needs at least one negative score");
        }
        if (!(targetFpr > 0 && targetFpr < 1)) {
            throw new IllegalArgumentException("the target FPR must be in (0, 1), found " + targetFpr);
        }
        double[] s = negativeScores.clone();
        Arrays.sort(s);
        int allowed = (int) Math.floor(targetFpr * s.length + 1e-9);
        return s[s.length - 1 - Math.min(allowed, s.length - 1)];
    }

    private static double roundUpAboveNegative(double s) {
        // −x rounded toward zero at 4 significant digits is ≥ s; step up until strictly above.
        double r = -FeatureSelection.roundDownBelow(-s);
        return r > s ? r : Math.nextUp(s);
    }
}
