package io.saeguard.detectors.select;

import io.saeguard.detectors.spi.Aggregation;
import io.saeguard.detectors.Chunk;
import io.saeguard.detectors.DecoderDirections;
import io.saeguard.detectors.DetectorDefinition;
import io.saeguard.detectors.DetectorEngine;
import io.saeguard.detectors.Policy;
import io.saeguard.detectors.SpecialTokens;
import io.saeguard.detectors.StateLimits;
import io.saeguard.detectors.rules.DsgConfig;
import io.saeguard.detectors.rules.FeaturesConfig;
import io.saeguard.detectors.select.SelectionOptions.Method;
import io.saeguard.detectors.select.SelectionOptions.RuleChoice;
import io.saeguard.topics.codes.SparseCodes;
import io.saeguard.topics.events.Action;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalInt;
import java.util.Random;

/**
 * Turns labelled examples into a detector (docs/algorithms.md#feature-selection, {@code saeguard select}): per-feature
 * statistics on positive, negative and optional random-token sets; a ranking (DSG importance, §1.1, or
 * mean difference, §8); LangFIR random-token filtering (§6); a {@code features} or {@code dsg} detector
 * calibrated on the negatives; and held-out AUROC / precision / recall next to a raw-probe baseline.
 *
 * <p><b>Split.</b> Each class's examples are shuffled with the seed and {@code holdoutFraction} of them
 * (at least one) are held out; statistics, thresholds, τ and the baseline use only the rest.
 *
 * <p><b>DSG ranking</b> (§1.1, as in the authors' code): {@code m_f} mean activation per token,
 * {@code s_f = m_f²}, {@code r_f = s^F_f / (s^R_f + 1e-21)}; candidates satisfy
 * {@code s^F_f ≥ P_floor(s^F)}, {@code r_f ≥ P_ratio(r)} (percentiles over all features, numpy's
 * linear interpolation) and, added here, {@code s^F_f > 0} (a dead feature is no candidate even when
 * the percentiles are 0); sorted by {@code s^F} descending. <b>Mean difference</b>: candidates with
 * {@code m^F − m^R > 0}, sorted by it. Then <b>LangFIR</b> drops candidates that fire on at least
 * {@code randomRateLimit} of the random tokens (generic "text-ness" features), and the first
 * {@code topN} remain.
 *
 * <p><b>features rule</b>: match any, aggregate max, one flag band at 1. A feature's threshold is
 * {@code max(q⁺, m⁺/2)}: {@code q⁺} the smallest round number (4 significant digits) strictly above
 * the {@code thresholdQuantile} of its activation over negative tokens (default the maximum, so no
 * training negative fires), and {@code m⁺} its mean activation on the positive tokens where it fires
 * (keeping scores on a readable scale when negatives never activate it).
 *
 * <p><b>dsg rule</b>: the chosen features with threshold 0 (fires whenever active, as in the paper).
 * τ is the smallest round number (4 significant digits) strictly above the {@code tauPercentile} of the
 * negatives' ρ (one ρ per negative training example; windowed: the pooled rates of every full window
 * of every negative example, plus the plain ρ of examples shorter than the window, as the DSG
 * replication advises against calibrating on per-example maxima, §1.5), floored at 1e-3 and capped at
 * 1. Strictly above makes the engine's {@code ρ ≥ τ} equal to the paper's {@code ρ > P_q} (§1.2).
 *
 * <p><b>Evaluation.</b> Each held-out example runs through a {@link DetectorEngine} with the written
 * definition as one request; its score is the detector's score after the example (positive when
 * {@code score ≥ 1}). The <b>raw-probe baseline</b> is {@link LogisticRegression} on the mean-pooled
 * raw activation of each example (the mean-pool probe of §8; per token when examples are single
 * tokens), positive when {@code p ≥ 0.5}.
 *
 * <p>Size: about 425 lines: the two selection methods (DSG's frequency ratio and the mean difference), τ calibration
 * and the held-out evaluation share one pass over the example codes; the text-driven selection
 * ({@code TextSelection}) and the report are their own classes.
 */
public final class FeatureSelection {
    private FeatureSelection() {}

    /**
     * Runs the selection.
     *
     * @param positive examples of the concept (the DSG "forget" set)
     * @param negative benign examples (the DSG "retain" set)
     * @param random   random-token sequences for LangFIR filtering
     * @throws IllegalArgumentException when the inputs cannot support the options (too few examples,
     *     different dictionaries, dsg without example grouping, no feature passing the filters)
     */
    public static SelectionResult select(ExampleSet positive, ExampleSet negative, Optional<ExampleSet> random,
            SelectionOptions options) {
        List<int[]> pos = counted(positive.groups(), options.skipFirstToken());
        List<int[]> neg = counted(negative.groups(), options.skipFirstToken());
        return select(positive, negative, random, options, split(pos.size(), options, "positive"),
                split(neg.size(), options, "negative"));
    }

    /**
     * Runs the selection on a given split: statistics, thresholds and τ from the {@code Train} examples, metrics on
     * the {@code Test} ones (indices into each set's examples, in order of first appearance).
     */
    public static SelectionResult select(ExampleSet positive, ExampleSet negative, Optional<ExampleSet> random,
            SelectionOptions options, int[] positiveTrain, int[] positiveTest, int[] negativeTrain, int[] negativeTest) {
        return select(positive, negative, random, options, new Split(positiveTrain, positiveTest), new Split(negativeTrain, negativeTest));
    }

    private static SelectionResult select(ExampleSet positive, ExampleSet negative, Optional<ExampleSet> random,
            SelectionOptions options, Split posSplit, Split negSplit) {
        if (options.rule() != RuleChoice.DSG && options.rule() != RuleChoice.FEATURES) {
            throw new IllegalArgumentException("feature selection writes dsg or features rules; probes are trained by TextSelection");
        }
        int dSae = positive.codes().dSae();
        if (negative.codes().dSae() != dSae || random.map(r -> r.codes().dSae() != dSae).orElse(false)) {
            throw new IllegalArgumentException("all sets must come from one SAE: d_sae differs between them");
        }
        boolean grouped = positive.examples().isPresent() && negative.examples().isPresent();
        if (options.rule() == RuleChoice.DSG && !grouped) {
            throw new IllegalArgumentException("the dsg rule needs examples (a per-token example id) in the positive and "
                    + "negative sets: ρ is a rate per request");
        }
        List<int[]> pos = counted(positive.groups(), options.skipFirstToken());
        List<int[]> neg = counted(negative.groups(), options.skipFirstToken());

        FeatureStatistics p = FeatureStatistics.of(positive.codes(), flatten(pos, posSplit.train()));
        int[] negTokens = flatten(neg, negSplit.train());
        FeatureStatistics n = FeatureStatistics.of(negative.codes(), negTokens);
        Optional<FeatureStatistics> r = random.map(set -> FeatureStatistics.of(set.codes(),
                flatten(counted(set.groups(), options.skipFirstToken()), null)));

        List<Integer> candidates = options.method() == Method.DSG ? dsgCandidates(p, n, options) : meanDiffCandidates(p, n);
        List<Integer> dropped = new ArrayList<>();
        List<Integer> chosen = new ArrayList<>();
        for (int f : candidates) {
            if (r.isPresent() && r.get().frequency(f) >= options.randomRateLimit()) {
                dropped.add(f);
            } else if (chosen.size() < options.topN()) {
                chosen.add(f);
            }
        }
        if (chosen.isEmpty()) {
            throw new IllegalArgumentException(candidates.size() + " candidate features, " + dropped.size()
                    + " dropped as firing on random tokens, none left: the positive set shows no distinctive feature");
        }

        List<ChosenFeature> report = new ArrayList<>();
        DetectorDefinition definition;
        OptionalDouble tau = OptionalDouble.empty();
        String calibration;
        if (options.rule() == RuleChoice.FEATURES) {
            List<FeaturesConfig.Feature> features = new ArrayList<>();
            for (int f : chosen) {
                double q = FeatureStatistics.quantile(negative.codes(), negTokens, f, options.thresholdQuantile());
                double threshold = Math.max(roundUpAbove(q), p.meanWhenActive(f) / 2);
                features.add(FeaturesConfig.Feature.withThreshold(f, threshold));
                report.add(stats(f, p, n, r, threshold));
            }
            definition = new DetectorDefinition(options.detectorId(), options.sae(), Optional.of(description(options)),
                    FeaturesConfig.any(features), Aggregation.max(), SpecialTokens.DEFAULT, flagPolicy());
            calibration = String.format(Locale.ROOT, "threshold = max(round-up of the %s of the feature's activation on "
                    + "negative tokens, half its mean active value on positive tokens)",
                    options.thresholdQuantile() == 1 ? "maximum" : "q" + options.thresholdQuantile() + " quantile");
        } else {
            List<DsgConfig.Feature> features = chosen.stream().map(DsgConfig.Feature::of).toList();
            int[] ids = chosen.stream().mapToInt(Integer::intValue).toArray();
            double[] rates = negativeRates(negative.codes(), neg, negSplit.train(), ids, options.window());
            double q = FeatureStatistics.percentile(rates, options.tauPercentile());
            double t = Math.min(1.0, Math.max(1e-3, roundUpAbove(q)));
            tau = OptionalDouble.of(t);
            for (int f : chosen) {
                report.add(stats(f, p, n, r, 0));
            }
            DsgConfig config = new DsgConfig(features, t, options.window());
            Aggregation agg = options.window().isPresent() ? Aggregation.fraction(options.window().getAsInt()) : Aggregation.fraction();
            definition = new DetectorDefinition(options.detectorId(), options.sae(), Optional.of(description(options)), config,
                    agg, SpecialTokens.DEFAULT, flagPolicy());
            calibration = String.format(Locale.ROOT, "tau = %s, just above P%s of %d negative %s (value %.6g)", t,
                    trim(options.tauPercentile()), rates.length,
                    options.window().isPresent() ? "window rates (W = " + options.window().getAsInt() + ", pooled)" : "example rates rho",
                    q);
        }

        // Held-out evaluation through the engine itself.
        double[] detectorScores = new double[posSplit.test().length + negSplit.test().length];
        boolean[] labels = new boolean[detectorScores.length];
        DetectorEngine engine = DetectorEngine.create(List.of(definition), DecoderDirections.none(),
                new StateLimits(Duration.ofDays(1), 16));
        int k = 0;
        for (int e : posSplit.test()) {
            labels[k] = true;
            detectorScores[k++] = score(engine, positive, positive.groups().get(e), "p" + e, options.skipFirstToken());
        }
        for (int e : negSplit.test()) {
            detectorScores[k++] = score(engine, negative, negative.groups().get(e), "n" + e, options.skipFirstToken());
        }
        ClassifierMetrics detectorMetrics = ClassifierMetrics.of(detectorScores, labels, 1.0);

        Optional<ClassifierMetrics> baseline = Optional.empty();
        String baselineNote;
        if (positive.activations().isPresent() && negative.activations().isPresent() && positive.dIn() == negative.dIn()) {
            int d = positive.dIn();
            int trainN = posSplit.train().length + negSplit.train().length;
            float[] xTrain = new float[trainN * d];
            boolean[] yTrain = new boolean[trainN];
            int row = 0;
            for (int e : posSplit.train()) {
                pool(positive, pos.get(e), xTrain, row, d);
                yTrain[row++] = true;
            }
            for (int e : negSplit.train()) {
                pool(negative, neg.get(e), xTrain, row++, d);
            }
            LogisticRegression.Options lr = LogisticRegression.Options.defaults().withL2(options.l2());
            LogisticRegression.Model model = LogisticRegression.fit(xTrain, trainN, d, yTrain, lr);
            float[] x = new float[d];
            double[] probeScores = new double[labels.length];
            k = 0;
            for (int e : posSplit.test()) {
                pool(positive, pos.get(e), x, 0, d);
                probeScores[k++] = model.probability(x, 0);
            }
            for (int e : negSplit.test()) {
                pool(negative, neg.get(e), x, 0, d);
                probeScores[k++] = model.probability(x, 0);
            }
            baseline = Optional.of(ClassifierMetrics.of(probeScores, labels, 0.5));
            baselineNote = String.format(Locale.ROOT, "L2 logistic regression (lambda = %s on standardised inputs, %s, %d "
                    + "iterations) on the %s raw activation, trained on the same %d examples", trim(options.l2()),
                    d <= lr.newtonMaxDim() ? "Newton" : "gradient descent", model.iterations(),
                    grouped ? "mean-pooled" : "token's", trainN);
        } else {
            baselineNote = "no raw-probe baseline: the positive and negative sets must both carry activations of one width";
        }
        SelectionReport rep = new SelectionReport(options, report, candidates.size(), dropped, tau, calibration,
                grouped ? "example" : "token", posSplit.train().length, negSplit.train().length, detectorMetrics, baseline,
                baselineNote);
        return new SelectionResult(definition, rep);
    }

    private static Policy flagPolicy() {
        return Policy.of(1.0, List.of(Policy.Band.of(1.0, Action.FLAG)));
    }

    private static String description(SelectionOptions o) {
        return "written by saeguard select: " + o.method().name().toLowerCase(Locale.ROOT).replace('_', '-') + " ranking, top "
                + o.topN() + ", " + o.rule().name().toLowerCase(Locale.ROOT) + " rule; review the features before use";
    }

    private static String trim(double v) {
        return v == Math.rint(v) ? Long.toString((long) v) : Double.toString(v);
    }

    private static ChosenFeature stats(int f, FeatureStatistics p, FeatureStatistics n, Optional<FeatureStatistics> r,
            double threshold) {
        double mf = p.mean(f);
        double mr = n.mean(f);
        return new ChosenFeature(f, mf, mr, p.frequency(f), n.frequency(f),
                r.map(s -> OptionalDouble.of(s.frequency(f))).orElse(OptionalDouble.empty()),
                mf * mf / (mr * mr + 1e-21), mf - mr, threshold);
    }

    /** DSG candidates (§1.1), sorted by forget score descending (ties: lower id first). */
    static List<Integer> dsgCandidates(FeatureStatistics p, FeatureStatistics n, SelectionOptions o) {
        int dSae = p.dSae();
        double[] sF = new double[dSae];
        double[] ratio = new double[dSae];
        for (int f = 0; f < dSae; f++) {
            double mf = p.mean(f);
            double mr = n.mean(f);
            sF[f] = mf * mf;
            ratio[f] = sF[f] / (mr * mr + 1e-21);
        }
        double floor = FeatureStatistics.percentile(sF, o.floorPercentile());
        double ratioCut = FeatureStatistics.percentile(ratio, o.ratioPercentile());
        List<Integer> out = new ArrayList<>();
        for (int f = 0; f < dSae; f++) {
            if (sF[f] > 0 && sF[f] >= floor && ratio[f] >= ratioCut) {
                out.add(f);
            }
        }
        out.sort(Comparator.<Integer>comparingDouble(f -> -sF[f]).thenComparingInt(f -> f));
        return out;
    }

    /** Mean-difference candidates, sorted by the difference descending. */
    static List<Integer> meanDiffCandidates(FeatureStatistics p, FeatureStatistics n) {
        List<Integer> out = new ArrayList<>();
        double[] diff = new double[p.dSae()];
        for (int f = 0; f < p.dSae(); f++) {
            diff[f] = p.mean(f) - n.mean(f);
            if (diff[f] > 0) {
                out.add(f);
            }
        }
        out.sort(Comparator.<Integer>comparingDouble(f -> -diff[f]).thenComparingInt(f -> f));
        return out;
    }

    /** The negatives' ρ values for τ calibration (see the class doc). */
    static double[] negativeRates(SparseCodes codes, List<int[]> examples, int[] which, int[] features, OptionalInt window) {
        List<Double> rates = new ArrayList<>();
        for (int e : which) {
            int[] tokens = examples.get(e);
            if (tokens.length == 0) {
                continue;
            }
            boolean[] fired = new boolean[tokens.length];
            int total = 0;
            for (int i = 0; i < tokens.length; i++) {
                fired[i] = firesAny(codes, tokens[i], features);
                total += fired[i] ? 1 : 0;
            }
            int w = window.orElse(0);
            if (w == 0 || tokens.length < w) {
                rates.add(total / (double) tokens.length);
                continue;
            }
            int inWindow = 0;
            for (int i = 0; i < tokens.length; i++) {
                inWindow += fired[i] ? 1 : 0;
                if (i >= w) {
                    inWindow -= fired[i - w] ? 1 : 0;
                }
                if (i >= w - 1) {
                    rates.add(inWindow / (double) w);
                }
            }
        }
        return rates.stream().mapToDouble(Double::doubleValue).toArray();
    }

    private static boolean firesAny(SparseCodes codes, int t, int[] features) {
        int n = codes.activeCount(t);
        for (int j = 0; j < n; j++) {
            int f = codes.featureAt(t, j);
            for (int s : features) {
                if (s == f && codes.valueAt(t, j) > 0) {
                    return true;
                }
            }
        }
        return false;
    }

    /** The smallest number with 4 significant digits strictly above {@code x}; 0 for {@code x <= 0}. */
    static double roundUpAbove(double x) {
        if (!(x > 0)) {
            return 0;
        }
        BigDecimal exact = new BigDecimal(x);
        int magnitude = exact.precision() - exact.scale() - 1; // x = d.ddd… × 10^magnitude
        BigDecimal r = exact.setScale(3 - magnitude, RoundingMode.CEILING);
        while (r.doubleValue() <= x) {
            r = r.add(r.ulp());
        }
        return r.doubleValue();
    }

    /** The largest number with 4 significant digits strictly below {@code x > 0}. */
    static double roundDownBelow(double x) {
        BigDecimal exact = new BigDecimal(x);
        int magnitude = exact.precision() - exact.scale() - 1;
        BigDecimal r = exact.setScale(3 - magnitude, RoundingMode.FLOOR);
        while (r.doubleValue() >= x) {
            r = r.subtract(r.ulp());
        }
        return r.doubleValue();
    }

    private static double score(DetectorEngine engine, ExampleSet set, int[] tokens, String id, boolean skipFirst) {
        SparseCodes slice = CodeSlices.of(set.codes(), tokens);
        float[] norms = new float[tokens.length];
        java.util.Arrays.fill(norms, 1f);
        Chunk chunk = new Chunk(id, slice.sae(), skipFirst ? 0 : 1, slice, Optional.empty(), 0, norms, Optional.empty(), true);
        return engine.evaluate(chunk, 0).verdicts().get(0).score();
    }

    /** Writes the mean activation of the example's tokens into row {@code row} of {@code out}. */
    private static void pool(ExampleSet set, int[] tokens, float[] out, int row, int d) {
        float[] x = set.activations().orElseThrow();
        double[] acc = new double[d];
        for (int t : tokens) {
            for (int j = 0; j < d; j++) {
                acc[j] += x[t * d + j];
            }
        }
        for (int j = 0; j < d; j++) {
            out[row * d + j] = (float) (acc[j] / Math.max(1, tokens.length));
        }
    }

    private static List<int[]> counted(List<int[]> groups, boolean skipFirst) {
        if (!skipFirst) {
            return groups;
        }
        List<int[]> out = new ArrayList<>(groups.size());
        for (int[] g : groups) {
            out.add(g.length == 0 ? g : java.util.Arrays.copyOfRange(g, 1, g.length));
        }
        return out;
    }

    private static int[] flatten(List<int[]> groups, int[] which) {
        int total = 0;
        int count = which == null ? groups.size() : which.length;
        for (int i = 0; i < count; i++) {
            total += groups.get(which == null ? i : which[i]).length;
        }
        int[] out = new int[total];
        int at = 0;
        for (int i = 0; i < count; i++) {
            int[] g = groups.get(which == null ? i : which[i]);
            System.arraycopy(g, 0, out, at, g.length);
            at += g.length;
        }
        return out;
    }

    private record Split(int[] train, int[] test) {
    }

    private static Split split(int n, SelectionOptions o, String what) {
        if (n < 2) {
            throw new IllegalArgumentException("the " + what + " set has " + n + " example(s); at least 2 are needed "
                    + "(one to select on, one to evaluate)");
        }
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            order.add(i);
        }
        Collections.shuffle(order, new Random(o.seed()));
        int test = (int) Math.min(n - 1, Math.max(1, Math.round(o.holdoutFraction() * n)));
        int[] testIdx = order.subList(0, test).stream().mapToInt(Integer::intValue).sorted().toArray();
        int[] trainIdx = order.subList(test, n).stream().mapToInt(Integer::intValue).sorted().toArray();
        return new Split(trainIdx, testIdx);
    }
}
