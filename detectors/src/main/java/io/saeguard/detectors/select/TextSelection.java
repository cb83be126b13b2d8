package io.saeguard.detectors.select;

import io.saeguard.detectors.spi.Aggregation;
import io.saeguard.detectors.Chunk;
import io.saeguard.detectors.DecoderDirections;
import io.saeguard.detectors.DetectorDefinition;
import io.saeguard.detectors.DetectorEngine;
import io.saeguard.detectors.Policy;
import io.saeguard.detectors.SpecialTokens;
import io.saeguard.detectors.StateLimits;
import io.saeguard.detectors.rules.ProbeConfig;
import io.saeguard.detectors.rules.ProbeWeights;
import io.saeguard.detectors.rules.RawProbeConfig;
import io.saeguard.detectors.select.SelectionOptions.RuleChoice;
import io.saeguard.topics.codes.SparseCodes;
import io.saeguard.topics.events.Action;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;

/**
 * Builds detectors of every rule kind from labelled examples on one {@link TextSplit} and measures them side by side
 * (docs/algorithms.md#text-selection): {@code dsg} and {@code features} ({@link FeatureSelection}), {@code probe}
 * (sparse, on mean-pooled SAE codes) and {@code raw-probe} (dense, on mean-pooled activations; {@link PooledProbe}),
 * and a string-match baseline. Every rule is fitted on the fit parts, its policy band calibrated to the target FPR on
 * the calibration negatives ({@link Calibration#thresholdAtFpr}), and scored on the test parts by a
 * {@link DetectorEngine} running the written definition, each example one request.
 *
 * <p>The examples' tokens must be the ones the sidecar counts (no special tokens): scoring starts at request
 * position 1, so the definitions' default {@code skip_first} skips nothing here; in the sidecar it skips the BOS.
 */
public final class TextSelection {
    private TextSelection() {}

    /** Rule kinds in report order. */
    public static final List<RuleChoice> RULES = List.of(RuleChoice.PROBE, RuleChoice.RAW_PROBE, RuleChoice.DSG, RuleChoice.FEATURES);

    /**
     * One class's labelled examples.
     *
     * @param set   codes, example ids and activations of every counted token
     * @param texts per example (in order of first appearance in {@code set}), its text; empty when the examples came
     *              from activation files (then there is no string-match baseline)
     */
    public record Examples(ExampleSet set, Optional<List<String>> texts) {
        public Examples {
            Objects.requireNonNull(set, "set");
            Objects.requireNonNull(texts, "texts");
            if (set.examples().isEmpty() || set.activations().isEmpty()) {
                throw new IllegalArgumentException("text selection needs example ids and activations for every token");
            }
            if (texts.isPresent() && texts.get().size() != set.groups().size()) {
                throw new IllegalArgumentException(texts.get().size() + " texts for " + set.groups().size() + " examples");
            }
            texts = texts.map(List::copyOf);
        }

        int size() {
            return set.groups().size();
        }
    }

    /**
     * A built and measured rule.
     *
     * @param rule       the rule kind
     * @param definition the detector, its band calibrated; absent when the rule could not be built
     * @param weights    probe kinds: the weights its weights file holds
     * @param metrics    held-out results; absent when the rule could not be built
     * @param note       how it was built, or why it could not be
     * @param features   the SAE features it names ({@code raw-probe}: none)
     */
    public record BuiltRule(RuleChoice rule, Optional<DetectorDefinition> definition, Optional<PooledProbe> weights,
            Optional<HeldOut> metrics, String note, int[] features) {
    }

    /**
     * Held-out numbers of one scorer.
     *
     * @param auroc     area under the ROC curve of the scores
     * @param tprAtFpr  TPR at the target FPR with the threshold taken from the held-out negatives (an oracle)
     * @param atPolicy  precision and recall at the written policy (score ≥ the calibrated band)
     * @param scores    per held-out example, its score: positives in split order, then negatives
     */
    public record HeldOut(double auroc, double tprAtFpr, ClassifierMetrics atPolicy, double[] scores) {
    }

    /**
     * The outcome on one split.
     *
     * @param split       the split
     * @param targetFpr   the FPR the bands were calibrated to
     * @param rules       every rule, in {@link #RULES} order
     * @param stringMatch the string-match baseline (threshold 1: a match), when there were texts and phrases
     * @param stringMatchName what the phrases are
     * @param selection   the feature-selection report of the dsg and features rules, when they were built
     */
    public record Outcome(TextSplit split, double targetFpr, List<BuiltRule> rules, Optional<HeldOut> stringMatch,
            String stringMatchName, List<SelectionReport> selection) {
        /** The built rule of a kind. */
        public BuiltRule rule(RuleChoice kind) {
            return rules.stream().filter(r -> r.rule() == kind).findFirst().orElseThrow();
        }
    }

    /**
     * Builds and measures every rule on one split.
     *
     * @param weightsStem probe weights are written as {@code <stem>.probe.safetensors} and
     *                    {@code <stem>.raw-probe.safetensors} beside the detector YAML; the definitions name them so
     */
    public static Outcome run(Examples positive, Examples negative, Optional<ExampleSet> random, TextSplit split,
            SelectionOptions options, double targetFpr, Optional<StringMatch> baseline, String weightsStem) {
        return run(positive, negative, random, split, options, ProbeL2.both(options.l2()), targetFpr, baseline, weightsStem);
    }

    /**
     * The L2 strength λ of each probe kind (standardised inputs), e.g. as {@link L2Grid} chose them on training folds.
     *
     * @param probe    λ of the sparse probe on SAE codes
     * @param rawProbe λ of the dense raw-activation probe
     */
    public record ProbeL2(double probe, double rawProbe) {
        public ProbeL2 {
            if (!(probe >= 0) || !(rawProbe >= 0)) {
                throw new IllegalArgumentException("L2 strengths must be >= 0, found " + probe + " and " + rawProbe);
            }
        }

        /** One λ for both. */
        public static ProbeL2 both(double lambda) {
            return new ProbeL2(lambda, lambda);
        }
    }

    /** As {@link #run(Examples, Examples, Optional, TextSplit, SelectionOptions, double, Optional, String)}, each probe with its own λ. */
    public static Outcome run(Examples positive, Examples negative, Optional<ExampleSet> random, TextSplit split,
            SelectionOptions options, ProbeL2 l2, double targetFpr, Optional<StringMatch> baseline, String weightsStem) {
        List<int[]> pos = positive.set().groups();
        List<int[]> neg = negative.set().groups();
        boolean[] labels = new boolean[split.positiveTest().length + split.negativeTest().length];
        Arrays.fill(labels, 0, split.positiveTest().length, true);
        List<BuiltRule> rules = new ArrayList<>();
        List<SelectionReport> selection = new ArrayList<>();
        for (RuleChoice kind : RULES) {
            SelectionOptions o = options.withRule(kind).withSkipFirstToken(false);
            DetectorDefinition uncalibrated;
            Optional<PooledProbe> probe = Optional.empty();
            String note;
            int[] named;
            try {
                switch (kind) {
                    case PROBE, RAW_PROBE -> {
                        boolean codes = kind == RuleChoice.PROBE;
                        List<double[]> rows = new ArrayList<>();
                        boolean[] y = new boolean[split.positiveFit().length + split.negativeFit().length];
                        int r = 0;
                        for (int e : split.positiveFit()) {
                            rows.add(pool(positive.set(), pos.get(e), codes));
                            y[r++] = true;
                        }
                        for (int e : split.negativeFit()) {
                            rows.add(pool(negative.set(), neg.get(e), codes));
                            r++;
                        }
                        double lambda = codes ? l2.probe() : l2.rawProbe();
                        PooledProbe p = codes ? PooledProbe.sparse(rows, y, o.topN(), lambda) : PooledProbe.dense(rows, y, lambda);
                        probe = Optional.of(p);
                        String file = weightsStem + (codes ? ".probe" : ".raw-probe") + ".safetensors";
                        ProbeWeights w = new ProbeWeights(p.weight(), p.bias());
                        var config = codes ? new ProbeConfig(file, w, 0.5, ProbeConfig.TokenScore.LOGIT)
                                : new RawProbeConfig(file, w, 0.5, ProbeConfig.TokenScore.LOGIT);
                        uncalibrated = new DetectorDefinition(o.detectorId(), o.sae(), Optional.of(description(kind, o, p)), config,
                                Aggregation.mean(), SpecialTokens.DEFAULT, Policy.of(1.0, List.of(Policy.Band.of(1.0, Action.FLAG))));
                        note = String.format(Locale.ROOT, "L2 logistic regression (lambda %s, standardised inputs, %d iterations) on "
                                + "mean-pooled %s of %d + %d fit examples%s", lambda, p.iterations(),
                                codes ? "SAE codes" : "raw activations", split.positiveFit().length, split.negativeFit().length,
                                codes ? ", top " + p.features().length + " features by |mean difference|" : "");
                        named = codes ? p.features() : new int[0];
                    }
                    default -> {
                        SelectionResult s = FeatureSelection.select(positive.set(), negative.set(), random, o, split.positiveFit(),
                                split.positiveTest(), split.negativeFit(), split.negativeTest());
                        selection.add(s.report());
                        uncalibrated = s.detector();
                        note = s.report().calibration();
                        named = s.report().features().stream().mapToInt(ChosenFeature::id).toArray();
                    }
                }
            } catch (IllegalArgumentException e) {
                rules.add(new BuiltRule(kind, Optional.empty(), Optional.empty(), Optional.empty(), "not built: " + e.getMessage(),
                        new int[0]));
                continue;
            }
            double[] calibrationScores = scores(uncalibrated, negative.set(), neg, split.negativeCalibration());
            double threshold = Calibration.thresholdAtFpr(calibrationScores, targetFpr);
            DetectorDefinition definition = uncalibrated.withPolicy(Policy.of(threshold, List.of(Policy.Band.of(threshold, Action.FLAG))));
            double[] test = concat(scores(definition, positive.set(), pos, split.positiveTest()),
                    scores(definition, negative.set(), neg, split.negativeTest()));
            rules.add(new BuiltRule(kind, Optional.of(definition), probe, Optional.of(heldOut(test, labels, threshold, targetFpr)),
                    note + String.format(Locale.ROOT, "; band at %s: FPR <= %s on %d calibration negatives", threshold, targetFpr,
                            calibrationScores.length), named));
        }
        Optional<HeldOut> match = Optional.empty();
        if (baseline.isPresent() && positive.texts().isPresent() && negative.texts().isPresent()) {
            double[] s = new double[labels.length];
            int k = 0;
            for (int e : split.positiveTest()) {
                s[k++] = baseline.get().score(positive.texts().get().get(e));
            }
            for (int e : split.negativeTest()) {
                s[k++] = baseline.get().score(negative.texts().get().get(e));
            }
            match = Optional.of(heldOut(s, labels, 1.0, targetFpr));
        }
        return new Outcome(split, targetFpr, rules, match, baseline.map(StringMatch::name).orElse("none"), selection);
    }

    private static HeldOut heldOut(double[] scores, boolean[] labels, double threshold, double targetFpr) {
        return new HeldOut(ClassifierMetrics.auroc(scores, labels), Calibration.tprAtFpr(scores, labels, targetFpr),
                ClassifierMetrics.of(scores, labels, threshold), scores);
    }

    private static String description(RuleChoice kind, SelectionOptions o, PooledProbe p) {
        return "written by saeguard select: " + (kind == RuleChoice.PROBE
                ? "sparse logistic probe on mean-pooled SAE codes, " + p.features().length + " features"
                : "dense logistic probe on mean-pooled raw activations") + "; score = sigma(mean token logit)";
    }

    private static double[] pool(ExampleSet set, int[] tokens, boolean codes) {
        return codes ? PooledProbe.poolCodes(set.codes(), tokens) : PooledProbe.poolActivations(set.activations().orElseThrow(), set.dIn(), tokens);
    }

    /** Each listed example's score after its last token, run through an engine as one request. */
    static double[] scores(DetectorDefinition definition, ExampleSet set, List<int[]> groups, int[] which) {
        DetectorEngine engine = DetectorEngine.create(List.of(definition), DecoderDirections.none(), new StateLimits(Duration.ofDays(1), 16));
        boolean activations = engine.needsActivations(definition.sae());
        double[] out = new double[which.length];
        for (int i = 0; i < which.length; i++) {
            int[] tokens = groups.get(which[i]);
            SparseCodes slice = CodeSlices.of(set.codes(), tokens);
            Optional<float[]> x = Optional.empty();
            int d = 0;
            if (activations) {
                d = set.dIn();
                float[] all = set.activations().orElseThrow();
                float[] rows = new float[tokens.length * d];
                for (int t = 0; t < tokens.length; t++) {
                    System.arraycopy(all, tokens[t] * d, rows, t * d, d);
                }
                x = Optional.of(rows);
            }
            float[] norms = new float[tokens.length];
            Arrays.fill(norms, 1f);
            Chunk chunk = new Chunk("e" + which[i], definition.sae(), 1, slice, x, d, norms, Optional.empty(), true);
            out[i] = engine.evaluate(chunk, 0).verdicts().get(0).score();
        }
        return out;
    }

    private static double[] concat(double[] a, double[] b) {
        double[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
