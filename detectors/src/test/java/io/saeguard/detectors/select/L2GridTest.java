package io.saeguard.detectors.select;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.saeguard.detectors.select.SelectionOptions.RuleChoice;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;

class L2GridTest {
    private static final long SEED = System.nanoTime();
    private static final double[] GRID = {1e-3, 0.1, 10};

    static {
        System.out.println("L2GridTest seed: " + SEED);
    }

    @Test
    void eachFoldAurocIsTheRuleFittedWithThatLambdaAndScoredByTheEngineOnThatFold() {
        // Given 60 positive and 80 negative examples (a planted SAE feature, a weak activation direction) and 3 folds
        Random rnd = new Random(SEED);
        TextSelection.Examples pos = TextSelectionTest.examples(rnd, 60, true);
        TextSelection.Examples neg = TextSelectionTest.examples(rnd, 80, false);
        List<TextSplit> folds = TextSplit.folds(60, 80, 3, 0.25, SEED);
        SelectionOptions options = SelectionOptions.defaults("t", "s").withTopN(5);

        for (RuleChoice kind : List.of(RuleChoice.PROBE, RuleChoice.RAW_PROBE)) {
            // When the grid is measured on the folds
            L2Grid.Choice c = L2Grid.choose(kind, pos, neg, folds, GRID, 5, "3 folds");

            // Then every lambda's fold AUROC is what TextSelection reports for that rule built with that lambda on that fold
            for (int l = 0; l < GRID.length; l++) {
                for (int f = 0; f < folds.size(); f++) {
                    TextSelection.Outcome o = TextSelection.run(pos, neg, Optional.empty(), folds.get(f), options,
                            TextSelection.ProbeL2.both(GRID[l]), 0.05, Optional.empty(), "t");
                    // the engine sums float logits per token, the grid scores the pooled row in double: allow one pair's order to flip
                    double onePair = 1.0 / (folds.get(f).positiveTest().length * (double) folds.get(f).negativeTest().length);
                    assertThat(c.foldAuroc()[l][f]).as("%s lambda %s fold %d, seed %d", kind, GRID[l], f, SEED)
                            .isCloseTo(o.rule(kind).metrics().orElseThrow().auroc(), within(onePair + 1e-12));
                }
                assertThat(c.meanAuroc()[l]).isCloseTo(Arrays.stream(c.foldAuroc()[l]).average().orElseThrow(), within(1e-12));
            }
            // and the chosen lambda has the best mean
            double best = Arrays.stream(c.meanAuroc()).max().orElseThrow();
            int chosen = Arrays.stream(GRID).boxed().toList().indexOf(c.chosen());
            assertThat(c.meanAuroc()[chosen]).as(kind.name()).isEqualTo(best);
            assertThat(c.chosenByFolds()).isTrue();
        }
    }

    @Test
    void equalMeansGoToTheLargerLambda() {
        // Given examples a one-feature probe separates perfectly whatever its L2 strength (the planted feature)
        Random rnd = new Random(SEED + 1);
        TextSelection.Examples pos = TextSelectionTest.examples(rnd, 30, true);
        TextSelection.Examples neg = TextSelectionTest.examples(rnd, 30, false);
        List<TextSplit> folds = TextSplit.folds(30, 30, 3, 0.25, SEED);

        // When the grid is measured with one feature
        L2Grid.Choice c = L2Grid.choose(RuleChoice.PROBE, pos, neg, folds, GRID, 1, "3 folds");

        // Then every lambda scores 1 and the strongest regularisation is chosen
        assertThat(c.meanAuroc()).containsOnly(1.0);
        assertThat(c.chosen()).isEqualTo(10.0);
    }

    @Test
    void oneValueIsKeptWithoutMeasuringAndOtherRulesAreRefused() {
        // Given any examples
        Random rnd = new Random(SEED + 2);
        TextSelection.Examples pos = TextSelectionTest.examples(rnd, 10, true);
        TextSelection.Examples neg = TextSelectionTest.examples(rnd, 10, false);
        List<TextSplit> folds = TextSplit.folds(10, 10, 2, 0.25, SEED);

        // When one lambda is given, Then it is kept and nothing is measured
        L2Grid.Choice c = L2Grid.choose(RuleChoice.RAW_PROBE, pos, neg, folds, new double[] {0.05}, 5, "2 folds");
        assertThat(c.chosen()).isEqualTo(0.05);
        assertThat(c.chosenByFolds()).isFalse();
        // and a rule without an L2 strength, or a negative lambda, is an error
        assertThatThrownBy(() -> L2Grid.choose(RuleChoice.DSG, pos, neg, folds, GRID, 5, "")).hasMessageContaining("probe and raw-probe");
        assertThatThrownBy(() -> L2Grid.choose(RuleChoice.PROBE, pos, neg, folds, new double[] {0.1, -1}, 5, ""))
                .hasMessageContaining(">= 0");
    }
}
