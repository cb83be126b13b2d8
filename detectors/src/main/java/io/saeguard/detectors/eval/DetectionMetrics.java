package io.saeguard.detectors.eval;

import java.util.Arrays;
import java.util.Comparator;
import java.util.Random;
import java.util.stream.IntStream;

/**
 * How well one detector's verdicts on labelled texts match the labels (docs/algorithms.md#detection-quality).
 *
 * <ul>
 *   <li><b>AUROC</b> from the scores: the probability that a random positive scores above a random negative, ties
 *       counted half (Mann–Whitney U / (n⁺·n⁻)).
 *   <li><b>TPR at a target FPR</b> (1 % in {@code saeguard eval}) with the threshold taken from the negatives: τ is the
 *       smallest observed score (of a positive or a negative) at which at most ⌊target·n⁻⌋ negatives score ≥ τ, or,
 *       where no observed score qualifies, the next double above the highest score; the TPR is the share of positives
 *       scoring ≥ τ. Equivalently, with k = ⌊target·n⁻⌋ and s the (k+1)-th highest negative score, the share of
 *       positives scoring strictly above s.
 *   <li><b>Precision and recall at the detector's own policy</b>: a text is predicted positive when the policy's action
 *       is anything but {@code allow} ({@code flagged}), whatever its score.
 * </ul>
 *
 * A text whose score is NaN (its detector failed with an error) is left out of the AUROC and the TPR, counted in
 * {@code unscored}, and still counted at the policy by the action its fail mode chose.
 *
 * @param positives       texts labelled positive
 * @param negatives       texts labelled negative
 * @param unscored        texts whose score was NaN
 * @param auroc           NaN without a scored positive and a scored negative
 * @param targetFpr       the false-positive rate the threshold was taken at
 * @param threshold       τ, the threshold at {@code targetFpr}; NaN without a scored negative
 * @param tprAtTargetFpr  share of scored positives with score ≥ τ; NaN without scored positives and negatives
 * @param fprAtThreshold  share of scored negatives with score ≥ τ (at most {@code targetFpr})
 * @param truePositives   positives the policy flagged
 * @param falsePositives  negatives the policy flagged
 * @param trueNegatives   negatives the policy allowed
 * @param falseNegatives  positives the policy allowed
 */
public record DetectionMetrics(int positives, int negatives, int unscored, double auroc, double targetFpr, double threshold,
        double tprAtTargetFpr, double fprAtThreshold, int truePositives, int falsePositives, int trueNegatives, int falseNegatives) {

    /** TP / (TP + FP); NaN when the policy flagged nothing. */
    public double precision() {
        int flagged = truePositives + falsePositives;
        return flagged == 0 ? Double.NaN : truePositives / (double) flagged;
    }

    /** TP / (TP + FN); NaN without positives. */
    public double recall() {
        return positives == 0 ? Double.NaN : truePositives / (double) positives;
    }

    /**
     * Computes the metrics.
     *
     * @param scores    each text's score (NaN: the detector failed on it)
     * @param flagged   whether the detector's policy chose an action other than {@code allow} for it
     * @param labels    whether it is a positive
     * @param targetFpr the false-positive rate for the threshold, in (0, 1)
     */
    public static DetectionMetrics of(double[] scores, boolean[] flagged, boolean[] labels, double targetFpr) {
        if (scores.length != labels.length || flagged.length != labels.length) {
            throw new IllegalArgumentException(scores.length + " scores and " + flagged.length + " policy outcomes for " + labels.length + " labels");
        }
        if (!(targetFpr > 0 && targetFpr < 1)) {
            throw new IllegalArgumentException("the target false-positive rate must be in (0, 1), found " + targetFpr);
        }
        int pos = 0;
        int tp = 0;
        int fp = 0;
        int unscored = 0;
        for (int i = 0; i < labels.length; i++) {
            pos += labels[i] ? 1 : 0;
            tp += labels[i] && flagged[i] ? 1 : 0;
            fp += !labels[i] && flagged[i] ? 1 : 0;
            unscored += Double.isNaN(scores[i]) ? 1 : 0;
        }
        int neg = labels.length - pos;
        Scored s = Scored.of(scores, labels);
        double threshold = thresholdAtFpr(s.scores, s.labels, targetFpr);
        double tpr = Double.NaN;
        double fpr = Double.NaN;
        if (!Double.isNaN(threshold) && s.positives > 0) {
            int tpAt = 0;
            int fpAt = 0;
            for (int i = 0; i < s.scores.length; i++) {
                if (s.scores[i] >= threshold) {
                    tpAt += s.labels[i] ? 1 : 0;
                    fpAt += s.labels[i] ? 0 : 1;
                }
            }
            tpr = tpAt / (double) s.positives;
            fpr = fpAt / (double) (s.scores.length - s.positives);
        }
        return new DetectionMetrics(pos, neg, unscored, auroc(s.scores, s.labels), targetFpr, threshold, tpr, fpr, tp, fp, neg - fp, pos - tp);
    }

    /**
     * AUROC, ties counted half; NaN without a positive and a negative. Scores must be finite or infinite, not NaN.
     */
    public static double auroc(double[] scores, boolean[] labels) {
        int[] order = ascending(scores);
        double[] ones = new double[scores.length];
        Arrays.fill(ones, 1);
        return weightedAuroc(scores, labels, order, ones);
    }

    /**
     * The threshold τ at a target FPR (see the class comment): the smallest observed score at which at most
     * ⌊target·n⁻⌋ negatives score at or above it; NaN without a negative.
     */
    public static double thresholdAtFpr(double[] scores, boolean[] labels, double targetFpr) {
        double[] neg = IntStream.range(0, scores.length).filter(i -> !labels[i]).mapToDouble(i -> scores[i]).sorted().toArray();
        if (neg.length == 0) {
            return Double.NaN;
        }
        // 1e-9: 0.01 · 300 is 3.0000000000000004 in binary, and so might be a hair below an integer for another n
        int allowed = (int) Math.floor(targetFpr * neg.length + 1e-9);
        if (allowed >= neg.length) {
            return Arrays.stream(scores).min().orElseThrow();
        }
        double s = neg[neg.length - 1 - allowed]; // the (allowed+1)-th highest negative: τ must lie above it
        double above = Double.POSITIVE_INFINITY;
        boolean found = false;
        for (double v : scores) {
            if (v > s && v <= above) {
                above = v;
                found = true;
            }
        }
        return found ? above : Math.nextUp(s);
    }

    /**
     * A percentile bootstrap interval for the AUROC: {@code resamples} stratified resamples (positives and negatives
     * drawn with replacement within their class, so each resample keeps n⁺ and n⁻), from a seeded generator so the
     * interval is reproducible. NaN scores are left out. Returns {@code [low, high]}; NaNs without both classes.
     *
     * @param level the interval's coverage, e.g. 0.95
     */
    public static double[] aurocInterval(double[] scores, boolean[] labels, int resamples, long seed, double level) {
        Scored s = Scored.of(scores, labels);
        int n = s.scores.length;
        if (s.positives == 0 || s.positives == n || resamples < 1) {
            return new double[] {Double.NaN, Double.NaN};
        }
        int[] order = ascending(s.scores);
        int[] posIdx = IntStream.range(0, n).filter(i -> s.labels[i]).toArray();
        int[] negIdx = IntStream.range(0, n).filter(i -> !s.labels[i]).toArray();
        Random rnd = new Random(seed);
        double[] weights = new double[n];
        double[] aurocs = new double[resamples];
        for (int r = 0; r < resamples; r++) {
            Arrays.fill(weights, 0);
            for (int j = 0; j < posIdx.length; j++) {
                weights[posIdx[rnd.nextInt(posIdx.length)]]++;
            }
            for (int j = 0; j < negIdx.length; j++) {
                weights[negIdx[rnd.nextInt(negIdx.length)]]++;
            }
            aurocs[r] = weightedAuroc(s.scores, s.labels, order, weights);
        }
        Arrays.sort(aurocs);
        double tail = (1 - level) / 2;
        return new double[] {percentile(aurocs, tail), percentile(aurocs, 1 - tail)};
    }

    /** Linear interpolation between the order statistics (numpy's default). */
    private static double percentile(double[] sorted, double q) {
        double pos = q * (sorted.length - 1);
        int lo = (int) Math.floor(pos);
        int hi = Math.min(lo + 1, sorted.length - 1);
        return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
    }

    /**
     * Mann–Whitney U with weights (multiplicities): over the scores in ascending order, a group of tied scores adds
     * (positive weight in it) · (negative weight below it + half the negative weight in it).
     */
    private static double weightedAuroc(double[] scores, boolean[] labels, int[] order, double[] weights) {
        double u = 0;
        double negBelow = 0;
        double posTotal = 0;
        int i = 0;
        while (i < order.length) {
            int j = i;
            double wp = 0;
            double wn = 0;
            while (j < order.length && scores[order[j]] == scores[order[i]]) {
                double w = weights[order[j]];
                if (labels[order[j]]) {
                    wp += w;
                } else {
                    wn += w;
                }
                j++;
            }
            u += wp * (negBelow + wn / 2);
            negBelow += wn;
            posTotal += wp;
            i = j;
        }
        return posTotal == 0 || negBelow == 0 ? Double.NaN : u / (posTotal * negBelow);
    }

    private static int[] ascending(double[] scores) {
        return IntStream.range(0, scores.length).boxed().sorted(Comparator.comparingDouble(i -> scores[i])).mapToInt(Integer::intValue)
                .toArray();
    }

    /** The texts with a score (not NaN). */
    private record Scored(double[] scores, boolean[] labels, int positives) {
        static Scored of(double[] scores, boolean[] labels) {
            int[] keep = IntStream.range(0, scores.length).filter(i -> !Double.isNaN(scores[i])).toArray();
            double[] s = new double[keep.length];
            boolean[] y = new boolean[keep.length];
            int pos = 0;
            for (int j = 0; j < keep.length; j++) {
                s[j] = scores[keep[j]];
                y[j] = labels[keep[j]];
                pos += y[j] ? 1 : 0;
            }
            return new Scored(s, y, pos);
        }
    }
}
