package io.saeguard.detectors.select;

import io.saeguard.detectors.select.SelectionOptions.RuleChoice;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * Chooses the L2 strength λ of a pooled probe ({@code probe} or {@code raw-probe}, {@link PooledProbe}) on training
 * folds (docs/algorithms.md#probes-from-text, {@code saeguard select --l2}): for every λ of the grid the probe is fitted
 * on each fold's fit part and its AUROC measured on the fold's held-out part; the λ with the best mean fold AUROC is
 * chosen (ties: the larger λ, the simpler model). The folds are given by the caller and must hold training examples
 * only: the examples a report calls held-out (e.g. {@code --test-data}) never enter a choice.
 *
 * <p>The engine scores a request as {@code σ(mean token logit)} and the probe is linear, so {@code σ(b + w · pooled row)}
 * is exactly the written detector's score (TextSelection): the grid scores pooled rows without running an engine.
 */
public final class L2Grid {
    private L2Grid() {}

    /**
     * The outcome of a choice.
     *
     * @param rule      {@code PROBE} or {@code RAW_PROBE}
     * @param lambdas   the grid, in the order given
     * @param foldAuroc {@code [lambda][fold]} AUROC on each fold's held-out part
     * @param meanAuroc per λ, the mean over folds
     * @param chosen    the chosen λ
     * @param folds     how the folds were made, for the report
     */
    public record Choice(RuleChoice rule, double[] lambdas, double[][] foldAuroc, double[] meanAuroc, double chosen, String folds) {
        public Choice {
            Objects.requireNonNull(rule, "rule");
            Objects.requireNonNull(folds, "folds");
            lambdas = lambdas.clone();
            meanAuroc = meanAuroc.clone();
            foldAuroc = Arrays.stream(foldAuroc).map(double[]::clone).toArray(double[][]::new);
        }

        /** A λ given alone: nothing to choose, nothing measured. */
        public static Choice fixed(RuleChoice rule, double lambda) {
            return new Choice(rule, new double[] {lambda}, new double[][] {{}}, new double[] {Double.NaN}, lambda,
                    "one value given, nothing chosen");
        }

        /** Whether folds chose it (more than one λ was given). */
        public boolean chosenByFolds() {
            return lambdas.length > 1;
        }
    }

    /**
     * Measures every λ on every fold and picks the best mean.
     *
     * @param kind     {@code PROBE} (sparse, the top {@code topN} features by |mean difference| of each fold's fit part)
     *                 or {@code RAW_PROBE} (dense, every activation column)
     * @param folds    training folds: each one's fit parts are fitted on, its test parts scored (calibration negatives
     *                 unused); may be empty when one λ is given
     * @param lambdas  the grid, each {@code >= 0}; at least one
     * @throws IllegalArgumentException for another kind, an empty grid, a negative λ or no folds
     */
    public static Choice choose(RuleChoice kind, TextSelection.Examples positive, TextSelection.Examples negative,
            List<TextSplit> folds, double[] lambdas, int topN, String foldsDescription) {
        if (kind != RuleChoice.PROBE && kind != RuleChoice.RAW_PROBE) {
            throw new IllegalArgumentException("an L2 strength is chosen for probe and raw-probe only, not " + kind);
        }
        if (lambdas.length == 0 || Arrays.stream(lambdas).anyMatch(l -> !(l >= 0))) {
            throw new IllegalArgumentException("--l2 needs one or more values >= 0, found " + Arrays.toString(lambdas));
        }
        if (lambdas.length == 1) {
            return Choice.fixed(kind, lambdas[0]);
        }
        if (folds.isEmpty()) {
            throw new IllegalArgumentException("choosing --l2 needs at least one fold");
        }
        boolean codes = kind == RuleChoice.PROBE;
        List<double[]> pos = pooled(positive.set(), codes);
        List<double[]> neg = pooled(negative.set(), codes);
        double[][] auroc = new double[lambdas.length][folds.size()];
        for (int f = 0; f < folds.size(); f++) {
            TextSplit s = folds.get(f);
            List<double[]> rows = new ArrayList<>();
            boolean[] y = new boolean[s.positiveFit().length + s.negativeFit().length];
            for (int e : s.positiveFit()) {
                y[rows.size()] = true;
                rows.add(pos.get(e));
            }
            for (int e : s.negativeFit()) {
                rows.add(neg.get(e));
            }
            boolean[] labels = new boolean[s.positiveTest().length + s.negativeTest().length];
            Arrays.fill(labels, 0, s.positiveTest().length, true);
            for (int l = 0; l < lambdas.length; l++) {
                PooledProbe p = codes ? PooledProbe.sparse(rows, y, topN, lambdas[l]) : PooledProbe.dense(rows, y, lambdas[l]);
                double[] scores = new double[labels.length];
                int k = 0;
                for (int e : s.positiveTest()) {
                    scores[k++] = p.probability(pos.get(e));
                }
                for (int e : s.negativeTest()) {
                    scores[k++] = p.probability(neg.get(e));
                }
                // a fit that did not converge to finite weights scores NaN: that λ cannot be chosen
                auroc[l][f] = Arrays.stream(scores).allMatch(Double::isFinite) ? ClassifierMetrics.auroc(scores, labels) : Double.NaN;
            }
        }
        double[] mean = new double[lambdas.length];
        int best = -1;
        for (int l = 0; l < lambdas.length; l++) {
            mean[l] = Arrays.stream(auroc[l]).average().orElseThrow();
            if (!Double.isNaN(mean[l]) && (best < 0 || mean[l] > mean[best] || (mean[l] == mean[best] && lambdas[l] > lambdas[best]))) {
                best = l;
            }
        }
        if (best < 0) {
            throw new IllegalArgumentException("no L2 strength of --l2 " + Arrays.toString(lambdas) + " gave finite probe scores on "
                    + "every fold: add larger values");
        }
        return new Choice(kind, lambdas, auroc, mean, lambdas[best], foldsDescription);
    }

    private static List<double[]> pooled(ExampleSet set, boolean codes) {
        List<double[]> out = new ArrayList<>();
        for (int[] tokens : set.groups()) {
            out.add(codes ? PooledProbe.poolCodes(set.codes(), tokens)
                    : PooledProbe.poolActivations(set.activations().orElseThrow(), set.dIn(), tokens));
        }
        return out;
    }
}
