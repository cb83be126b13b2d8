package io.saeguard.detectors.select;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.saeguard.detectors.rules.ProbeConfig;
import io.saeguard.detectors.select.SelectionOptions.RuleChoice;
import io.saeguard.topics.codes.SparseCodes;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;

class TextSelectionTest {
    private static final long SEED = System.nanoTime();
    private static final int D_SAE = 64;
    private static final int D_IN = 8;
    private static final int PLANTED = 13;

    static {
        System.out.println("TextSelectionTest seed: " + SEED);
    }

    /**
     * {@code n} examples of 3–9 tokens; each token fires 4 random features of 64 (never the planted one) and, in
     * positive examples, the planted feature on half its tokens; activations: noise plus 2 on column 0 where planted.
     */
    static TextSelection.Examples examples(Random rnd, int n, boolean positive) {
        List<int[]> idx = new ArrayList<>();
        List<float[]> val = new ArrayList<>();
        List<Integer> example = new ArrayList<>();
        List<float[]> x = new ArrayList<>();
        List<String> texts = new ArrayList<>();
        for (int e = 0; e < n; e++) {
            int len = 3 + rnd.nextInt(7);
            for (int t = 0; t < len; t++) {
                boolean planted = positive && t % 2 == 0;
                int[] f = rnd.ints(0, D_SAE).filter(i -> i != PLANTED).distinct().limit(4).toArray();
                float[] v = new float[f.length + (planted ? 1 : 0)];
                int[] fi = java.util.Arrays.copyOf(f, v.length);
                for (int j = 0; j < v.length; j++) {
                    v[j] = (float) (0.5 + rnd.nextDouble());
                }
                if (planted) {
                    fi[f.length] = PLANTED;
                    v[f.length] = 3f;
                }
                idx.add(fi);
                val.add(v);
                example.add(e);
                float[] row = new float[D_IN];
                for (int j = 0; j < D_IN; j++) {
                    row[j] = (float) rnd.nextGaussian();
                }
                row[0] += planted ? 2 : 0;
                x.add(row);
            }
            texts.add((positive ? "bad " : "fine ") + e);
        }
        int tokens = idx.size();
        int[] rowStart = new int[tokens + 1];
        for (int t = 0; t < tokens; t++) {
            rowStart[t + 1] = rowStart[t] + idx.get(t).length;
        }
        int[] flatIdx = new int[rowStart[tokens]];
        float[] flatVal = new float[rowStart[tokens]];
        float[] flatX = new float[tokens * D_IN];
        for (int t = 0; t < tokens; t++) {
            // CSR rows must list features in ascending order
            int[] row = idx.get(t);
            int[] order = java.util.stream.IntStream.range(0, row.length).boxed()
                    .sorted(java.util.Comparator.comparingInt(j -> row[j])).mapToInt(Integer::intValue).toArray();
            for (int j = 0; j < order.length; j++) {
                flatIdx[rowStart[t] + j] = idx.get(t)[order[j]];
                flatVal[rowStart[t] + j] = val.get(t)[order[j]];
            }
            System.arraycopy(x.get(t), 0, flatX, t * D_IN, D_IN);
        }
        SparseCodes codes = SparseCodes.ofCsr("s", D_SAE, rowStart, flatIdx, flatVal);
        ExampleSet set = ExampleSet.ofExamples(codes, example.stream().mapToInt(Integer::intValue).toArray()).withActivations(flatX, D_IN);
        return new TextSelection.Examples(set, Optional.of(texts));
    }

    @Test
    void everyRuleIsBuiltTheProbeNamesThePlantedFeatureAndTheEngineScoresWhatWasTrained() {
        // Given 120 positive examples carrying a planted feature and 160 negatives without it
        Random rnd = new Random(SEED);
        TextSelection.Examples pos = examples(rnd, 120, true);
        TextSelection.Examples neg = examples(rnd, 160, false);
        TextSplit split = TextSplit.holdout(120, 160, 0.25, 0.25, 7);

        // When every rule is built on the split, with a string match on "bad"
        TextSelection.Outcome o = TextSelection.run(pos, neg, Optional.empty(), split,
                SelectionOptions.defaults("t", "s").withTopN(3), 0.05, Optional.of(StringMatch.keywords("bad", List.of("bad"))), "t");

        // Then the sparse probe names the planted feature with a positive weight and separates the held-out examples
        TextSelection.BuiltRule probe = o.rule(RuleChoice.PROBE);
        assertThat(probe.features()).contains(PLANTED).hasSizeLessThanOrEqualTo(3);
        assertThat(probe.weights().orElseThrow().weight()[PLANTED]).isPositive();
        assertThat(probe.metrics().orElseThrow().auroc()).isGreaterThan(0.99);
        assertThat(((ProbeConfig) probe.definition().orElseThrow().rule()).tokenScore()).isEqualTo(ProbeConfig.TokenScore.LOGIT);
        // and the engine's score of each held-out example is the trained probe on its mean-pooled codes
        PooledProbe p = probe.weights().orElseThrow();
        double[] engine = probe.metrics().orElseThrow().scores();
        List<int[]> groups = pos.set().groups();
        for (int i = 0; i < split.positiveTest().length; i++) {
            double trained = p.probability(PooledProbe.poolCodes(pos.set().codes(), groups.get(split.positiveTest()[i])));
            assertThat(engine[i]).isCloseTo(trained, within(1e-6));
        }
        // and every other rule was built and measured on the same held-out examples, and the string match is exact here
        for (RuleChoice r : TextSelection.RULES) {
            assertThat(o.rule(r).metrics()).as(r.name()).isPresent();
            assertThat(o.rule(r).metrics().orElseThrow().atPolicy().positives()).isEqualTo(split.positiveTest().length);
        }
        // The dense probe sees the plant only as +1 on one of 8 noisy columns after mean pooling (separation ~0.94 in
        // expectation); on 70 held-out examples it drew 0.88 once, so the floor says "it learned the direction", not more.
        assertThat(o.rule(RuleChoice.RAW_PROBE).metrics().orElseThrow().auroc()).as("seed %d", SEED).isGreaterThan(0.8);
        assertThat(o.stringMatch().orElseThrow().auroc()).isEqualTo(1.0);
    }

    @Test
    void eachBandLetsAtMostTheTargetShareOfCalibrationNegativesThrough() {
        // Given the same kind of data
        Random rnd = new Random(SEED + 1);
        TextSelection.Examples pos = examples(rnd, 80, true);
        TextSelection.Examples neg = examples(rnd, 200, false);
        TextSplit split = TextSplit.holdout(80, 200, 0.25, 0.4, 3);

        // When built with a 5 % target
        TextSelection.Outcome o = TextSelection.run(pos, neg, Optional.empty(), split, SelectionOptions.defaults("t", "s"), 0.05,
                Optional.empty(), "t");

        // Then re-scoring the calibration negatives under each written definition flags at most 5 % of them
        for (TextSelection.BuiltRule r : o.rules()) {
            var d = r.definition().orElseThrow();
            double band = d.policy().bands().get(0).min();
            double[] s = TextSelection.scores(d, neg.set(), neg.set().groups(), split.negativeCalibration());
            long flagged = java.util.Arrays.stream(s).filter(v -> v >= band).count();
            assertThat(flagged).as(r.rule().name()).isLessThanOrEqualTo((long) Math.floor(0.05 * s.length));
        }
    }
}
