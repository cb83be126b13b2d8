package io.saeguard.detectors.select;

/**
 * How well scores separate labelled examples: AUROC (threshold-free) and precision/recall at an
 * operating threshold ({@code score >= threshold} predicts positive).
 *
 * @param auroc     area under the ROC curve, ties counted half (Mann–Whitney U / (n⁺ n⁻))
 * @param precision TP / (TP + FP); 1 when nothing is predicted positive
 * @param recall    TP / (TP + FN)
 * @param threshold the operating threshold
 * @param positives positive examples evaluated
 * @param negatives negative examples evaluated
 */
public record ClassifierMetrics(double auroc, double precision, double recall, double threshold, int positives, int negatives) {
    /**
     * Computes the metrics.
     *
     * @throws IllegalArgumentException without at least one positive and one negative
     */
    public static ClassifierMetrics of(double[] scores, boolean[] labels, double threshold) {
        if (scores.length != labels.length) {
            throw new IllegalArgumentException(scores.length + " scores for " + labels.length + " labels");
        }
        int pos = 0;
        int tp = 0;
        int fp = 0;
        for (int i = 0; i < scores.length; i++) {
            boolean predicted = scores[i] >= threshold;
            if (labels[i]) {
                pos++;
                tp += predicted ? 1 : 0;
            } else {
                fp += predicted ? 1 : 0;
            }
        }
        int neg = scores.length - pos;
        if (pos == 0 || neg == 0) {
            throw new IllegalArgumentException("metrics need positives and negatives, got " + pos + " and " + neg);
        }
        return new ClassifierMetrics(auroc(scores, labels), tp + fp == 0 ? 1.0 : tp / (double) (tp + fp),
                tp / (double) pos, threshold, pos, neg);
    }

    /** AUROC by ranks: the probability that a random positive scores above a random negative, ties half. */
    static double auroc(double[] scores, boolean[] labels) {
        int n = scores.length;
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        java.util.Arrays.sort(order, (a, b) -> Double.compare(scores[a], scores[b]));
        double rankSumPositive = 0;
        int pos = 0;
        int i = 0;
        while (i < n) {
            int j = i;
            while (j + 1 < n && scores[order[j + 1]] == scores[order[i]]) {
                j++;
            }
            double midRank = (i + j) / 2.0 + 1;
            for (int k = i; k <= j; k++) {
                if (labels[order[k]]) {
                    rankSumPositive += midRank;
                    pos++;
                }
            }
            i = j + 1;
        }
        int neg = n - pos;
        return (rankSumPositive - pos * (pos + 1) / 2.0) / ((double) pos * neg);
    }
}
