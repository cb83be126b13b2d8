package io.saeguard.detectors;

import static io.saeguard.detectors.TestChunks.D_SAE;
import static io.saeguard.detectors.TestChunks.chunk;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

class FeaturesRuleTest {
    private static double tokenScore(String rule, float a3, float a5) {
        String yaml = """
                id: d
                sae: sae-test
                rule:
                %s
                aggregate: token
                policy: {}
                """.formatted(rule.indent(2).stripTrailing());
        DetectorEngine engine = DetectorEngine.create(List.of(Yaml.definition(yaml)), DecoderDirections.none(),
                new StateLimits(Duration.ofMinutes(1), 10));
        float[][] rows = new float[1][D_SAE];
        rows[0][3] = a3;
        rows[0][5] = a5;
        rows[0][9] = 50; // an unlisted feature never counts
        return engine.evaluate(chunk("r", 1, rows).build(), 0).verdicts().get(0).score();
    }

    private static final String THRESHOLDS = """
            features:
              - {id: 3, threshold: 2.0}
              - {id: 5, threshold: 4.0}""";

    @Test
    void anyTakesTheLargestActivationOverThreshold() {
        assertThat(tokenScore("kind: features\nmatch: any\n" + THRESHOLDS, 4, 10)).isCloseTo(Math.max(4 / 2.0, 10 / 4.0), within(1e-12));
    }

    @Test
    void anyIsTheDefaultMatch() {
        assertThat(tokenScore("kind: features\n" + THRESHOLDS, 4, 0)).isCloseTo(2.0, within(1e-12));
    }

    @Test
    void allTakesTheSmallestActivationOverThreshold() {
        assertThat(tokenScore("kind: features\nmatch: all\n" + THRESHOLDS, 4, 10)).isCloseTo(Math.min(4 / 2.0, 10 / 4.0), within(1e-12));
    }

    @Test
    void allScoresZeroWhenAListedFeatureIsInactive() {
        assertThat(tokenScore("kind: features\nmatch: all\n" + THRESHOLDS, 4, 0)).isZero();
    }

    @Test
    void weightedSumsWeightTimesActivationOverTheRuleThreshold() {
        String rule = """
                kind: features
                match: weighted
                threshold: 2.0
                features:
                  - {id: 3, weight: 0.5}
                  - {id: 5, weight: -1.0}""";

        assertThat(tokenScore(rule, 4, 1)).isCloseTo((0.5 * 4 - 1.0 * 1) / 2.0, within(1e-12));
    }
}
