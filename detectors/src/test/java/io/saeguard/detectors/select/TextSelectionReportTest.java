package io.saeguard.detectors.select;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.saeguard.detectors.select.SelectionOptions.RuleChoice;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;

class TextSelectionReportTest {
    @Test
    void theReportsListEveryLambdaWithItsFoldAurocsAndTheChosenOne() throws Exception {
        // Given an outcome and a probe lambda chosen on two folds, the raw-probe's given alone
        Random rnd = new Random(3);
        TextSelection.Examples pos = TextSelectionTest.examples(rnd, 20, true);
        TextSelection.Examples neg = TextSelectionTest.examples(rnd, 20, false);
        TextSelection.Outcome o = TextSelection.run(pos, neg, Optional.empty(), TextSplit.holdout(20, 20, 0.25, 0.25, 1),
                SelectionOptions.defaults("t", "s"), 0.05, Optional.empty(), "t");
        L2Grid.Choice probe = new L2Grid.Choice(RuleChoice.PROBE, new double[] {0.01, 0.1}, new double[][] {{0.81, 0.83}, {0.9, 0.92}},
                new double[] {0.82, 0.91}, 0.1, "2 random folds of the training part only");
        List<L2Grid.Choice> l2 = List.of(probe, L2Grid.Choice.fixed(RuleChoice.RAW_PROBE, 0.01));

        // When rendered
        String md = TextSelectionReport.markdown("t", "s", RuleChoice.PROBE, List.of(o), "inputs", l2);
        JsonNode json = new ObjectMapper().readTree(TextSelectionReport.json("t", RuleChoice.PROBE, List.of(o), l2));

        // Then the Markdown has the grid with each fold's AUROC, the chosen lambda in bold, and the fixed one named
        assertThat(md).contains("## L2 strength, chosen on training folds", "**probe**: lambda 0.1, the best mean AUROC over 2 folds",
                "| 0.01 | 0.820 | 0.810 0.830 |", "| **0.1** | 0.910 | 0.900 0.920 |", "L2 strength of raw-probe: lambda 0.01 (one value given)");
        // and the JSON the same numbers
        assertThat(json.at("/l2/probe/chosen").asDouble()).isEqualTo(0.1);
        assertThat(json.at("/l2/probe/grid/1/fold_auroc/1").asDouble()).isEqualTo(0.92);
        assertThat(json.at("/l2/probe/grid/0/mean_auroc").asDouble()).isEqualTo(0.82);
        assertThat(json.at("/l2/raw-probe/chosen").asDouble()).isEqualTo(0.01);
        assertThat(json.at("/l2/raw-probe/grid")).isEmpty();
    }
}
