package io.saeguard.detectors.select;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.saeguard.detectors.DetectorDefinitions;
import io.saeguard.detectors.rules.DsgConfig;
import io.saeguard.detectors.rules.FeaturesConfig;
import io.saeguard.topics.codes.SparseCodes;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import org.junit.jupiter.api.Test;

/** Selection on small hand-made codes: d_sae 10, examples of 4 tokens. */
class FeatureSelectionTest {
    private static final int D = 10;

    /** Codes with one active feature per token ({@code -1}: none). */
    private static SparseCodes codes(int[] features, float value) {
        int[] rowStart = new int[features.length + 1];
        int nnz = 0;
        for (int t = 0; t < features.length; t++) {
            rowStart[t] = nnz;
            nnz += features[t] >= 0 ? 1 : 0;
        }
        rowStart[features.length] = nnz;
        int[] idx = new int[nnz];
        float[] val = new float[nnz];
        int p = 0;
        for (int f : features) {
            if (f >= 0) {
                idx[p] = f;
                val[p++] = value;
            }
        }
        return SparseCodes.ofCsr("s", D, rowStart, idx, val);
    }

    private static int[] examplesOf(int tokens, int perExample) {
        int[] e = new int[tokens];
        for (int t = 0; t < tokens; t++) {
            e[t] = t / perExample;
        }
        return e;
    }

    /** 8 positive examples: feature 1 on every other token, feature 2 (generic) on the rest. */
    private static ExampleSet positives() {
        int[] f = new int[32];
        for (int t = 0; t < f.length; t++) {
            f[t] = t % 2 == 0 ? 1 : 2;
        }
        return ExampleSet.ofExamples(codes(f, 3f), examplesOf(32, 4));
    }

    /** 8 negative examples: feature 2 on most tokens, feature 1 once (token 5), feature 4 on every fourth. */
    private static ExampleSet negatives() {
        int[] f = new int[32];
        for (int t = 0; t < f.length; t++) {
            f[t] = t % 4 == 3 ? 4 : 2;
        }
        f[5] = 1;
        return ExampleSet.ofExamples(codes(f, 3f), examplesOf(32, 4));
    }

    /** 8 negative examples like {@link #negatives()}, but feature 1 fires once in every example (token 1 of 4). */
    private static ExampleSet negativesFiringOncePerExample() {
        int[] f = new int[32];
        for (int t = 0; t < f.length; t++) {
            f[t] = t % 4 == 3 ? 4 : t % 4 == 1 ? 1 : 2;
        }
        return ExampleSet.ofExamples(codes(f, 3f), examplesOf(32, 4));
    }

    @Test
    void dsgRankingKeepsTheFeatureThatIsFrequentOnPositivesAndRareOnNegatives() {
        // Given
        FeatureStatistics p = FeatureStatistics.of(positives().codes(), range(32));
        FeatureStatistics n = FeatureStatistics.of(negatives().codes(), range(32));

        // When: ratios r₁ = (1.5)² / (3/32)², r₂ = 1.5² / (2.25)²; P90 over 10 features selects only the top one
        List<Integer> c = FeatureSelection.dsgCandidates(p, n, SelectionOptions.defaults("x", "s").withRatioPercentile(90));

        // Then
        assertThat(p.mean(1)).isCloseTo(1.5, within(1e-12));
        assertThat(n.mean(1)).isCloseTo(3.0 / 32, within(1e-12));
        assertThat(c).containsExactly(1);
    }

    @Test
    void meanDifferenceRanksByPositiveMinusNegativeMean() {
        FeatureStatistics p = FeatureStatistics.of(positives().codes(), range(32));
        FeatureStatistics n = FeatureStatistics.of(negatives().codes(), range(32));

        assertThat(FeatureSelection.meanDiffCandidates(p, n)).containsExactly(1);
    }

    @Test
    void percentileMatchesNumpysLinearInterpolation() {
        // numpy.percentile([1, 2, 3, 4], 95) == 3.85; ([0, 10], 25) == 2.5
        assertThat(FeatureStatistics.percentile(new double[] {4, 1, 3, 2}, 95)).isCloseTo(3.85, within(1e-12));
        assertThat(FeatureStatistics.percentile(new double[] {10, 0}, 25)).isCloseTo(2.5, within(1e-12));
    }

    @Test
    void roundUpAboveIsStrictlyAboveWithFourSignificantDigits() {
        assertThat(FeatureSelection.roundUpAbove(0.25)).isEqualTo(0.2501);
        assertThat(FeatureSelection.roundUpAbove(1.0 / 3)).isEqualTo(0.3334);
        assertThat(FeatureSelection.roundUpAbove(123456.0)).isEqualTo(123500.0);
        assertThat(FeatureSelection.roundUpAbove(0)).isZero();
    }

    @Test
    void tauSitsJustAboveTheNegativesPercentileOfRho() {
        // Given: every negative example fires feature 1 on one token of four: ρ = 1/4
        SelectionOptions o = SelectionOptions.defaults("bio", "s").withRatioPercentile(90);

        // When
        SelectionResult r = FeatureSelection.select(positives(), negativesFiringOncePerExample(), Optional.empty(), o);

        // Then
        DsgConfig dsg = (DsgConfig) r.detector().rule();
        assertThat(dsg.features()).containsExactly(DsgConfig.Feature.of(1));
        assertThat(dsg.tau()).isEqualTo(0.2501);
        assertThat(dsg.window()).isEmpty();
        assertThat(r.report().tau()).hasValue(0.2501);
        assertThat(r.report().trainNegatives()).isEqualTo(6);
        assertThat(r.report().detector().recall()).isEqualTo(1.0);
        assertThat(r.report().detector().precision()).isEqualTo(1.0);
    }

    @Test
    void windowedCalibrationPoolsEveryFullWindow() {
        // Given one negative example of 4 tokens firing at token 1 only, window 2: windows 1/2, 1/2, 0
        SparseCodes c = codes(new int[] {-1, 1, -1, -1, -1, -1, -1, -1}, 1f);

        // When
        double[] rates = FeatureSelection.negativeRates(c, List.of(new int[] {0, 1, 2, 3}, new int[] {4, 5}), new int[] {0, 1},
                new int[] {1}, OptionalInt.of(2));

        // Then
        assertThat(rates).containsExactly(0.5, 0.5, 0.0, 0.0);
    }

    @Test
    void langFirDropsFeaturesThatFireOnRandomTokens() {
        // Given random tokens where feature 1 fires on half of them
        ExampleSet random = ExampleSet.ofTokens(codes(new int[] {1, -1, 1, -1}, 1f));
        SelectionOptions o = SelectionOptions.defaults("x", "s").withRatioPercentile(90);

        // When / Then: feature 1 was the only candidate
        assertThatThrownBy(() -> FeatureSelection.select(positives(), negatives(), Optional.of(random), o))
                .hasMessageContaining("1 candidate features, 1 dropped as firing on random tokens");
    }

    @Test
    void featuresRuleThresholdsSitAboveEveryNegativeActivation() {
        // Given
        SelectionOptions o = SelectionOptions.defaults("x", "s").withRatioPercentile(90)
                .withRule(SelectionOptions.RuleChoice.FEATURES);

        // When
        SelectionResult r = FeatureSelection.select(positives(), negativesFiringOncePerExample(), Optional.empty(), o);

        // Then: the negatives' largest activation of feature 1 is 3, so the threshold is the next 4-digit number
        FeaturesConfig rule = (FeaturesConfig) r.detector().rule();
        assertThat(rule.features()).singleElement().satisfies(f -> {
            assertThat(f.id()).isEqualTo(1);
            assertThat(f.threshold()).hasValue(3.001);
        });
        assertThat(r.report().features().get(0).threshold()).isEqualTo(3.001);
        assertThat(DetectorDefinitions.toYaml(r.detector())).contains("kind: features").contains("aggregate: max");
    }

    @Test
    void dsgNeedsExampleGrouping() {
        ExampleSet tokens = ExampleSet.ofTokens(positives().codes());

        assertThatThrownBy(() -> FeatureSelection.select(tokens, negatives(), Optional.empty(), SelectionOptions.defaults("x", "s")))
                .hasMessageContaining("dsg rule needs examples");
    }

    @Test
    void aSetWithOneExampleIsRejected() {
        ExampleSet one = ExampleSet.ofExamples(positives().codes(), new int[32]);

        assertThatThrownBy(() -> FeatureSelection.select(one, negatives(), Optional.empty(), SelectionOptions.defaults("x", "s")))
                .hasMessageContaining("the positive set has 1 example(s)");
    }

    @Test
    void theReportRendersAsMarkdown() {
        SelectionResult r = FeatureSelection.select(positives(), negatives(), Optional.empty(),
                SelectionOptions.defaults("bio", "s").withRatioPercentile(90));

        String md = MarkdownReport.render(r.report());

        assertThat(md).startsWith("# Feature selection: `bio`").contains("## Chosen features").contains("| 1 | 1 |")
                .contains("## Held-out evaluation").contains("raw-probe baseline | – |").contains("no raw-probe baseline");
    }

    @Test
    void theReportCitesPapersByArxivIdAndTheRepositorysOwnDocs() {
        SelectionResult r = FeatureSelection.select(positives(), negatives(), Optional.empty(),
                SelectionOptions.defaults("bio", "s").withRatioPercentile(90));

        String md = MarkdownReport.render(r.report());

        assertThat(md).contains("arXiv 2504.08192").contains("docs/algorithms.md#dsg-importance").contains("arXiv 2502.16681")
                .doesNotContain("§");
    }

    private static int[] range(int n) {
        int[] r = new int[n];
        for (int i = 0; i < n; i++) {
            r[i] = i;
        }
        return r;
    }
}
