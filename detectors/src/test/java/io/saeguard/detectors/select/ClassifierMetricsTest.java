package io.saeguard.detectors.select;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.Random;
import org.junit.jupiter.api.Test;

class ClassifierMetricsTest {
    @Test
    void perfectReversedAndTiedScoresGiveOneZeroAndAHalf() {
        boolean[] labels = {false, false, true, true};

        assertThat(ClassifierMetrics.auroc(new double[] {0, 1, 2, 3}, labels)).isEqualTo(1.0);
        assertThat(ClassifierMetrics.auroc(new double[] {3, 2, 1, 0}, labels)).isEqualTo(0.0);
        assertThat(ClassifierMetrics.auroc(new double[] {1, 1, 1, 1}, labels)).isEqualTo(0.5);
    }

    @Test
    void aurocEqualsThePairwiseCount() {
        // Given random scores with ties
        Random rnd = new Random(7);
        double[] s = new double[200];
        boolean[] y = new boolean[200];
        for (int i = 0; i < s.length; i++) {
            y[i] = rnd.nextBoolean();
            s[i] = rnd.nextInt(20) + (y[i] ? 3 : 0);
        }

        // When
        double fast = ClassifierMetrics.auroc(s, y);

        // Then
        double wins = 0;
        int pairs = 0;
        for (int i = 0; i < s.length; i++) {
            for (int j = 0; j < s.length; j++) {
                if (y[i] && !y[j]) {
                    pairs++;
                    wins += s[i] > s[j] ? 1 : s[i] == s[j] ? 0.5 : 0;
                }
            }
        }
        assertThat(fast).isCloseTo(wins / pairs, within(1e-12));
    }

    @Test
    void precisionAndRecallAtTheThreshold() {
        // Given: predicted positive at score >= 1: TP 2, FP 1, FN 1
        ClassifierMetrics m = ClassifierMetrics.of(new double[] {1, 2, 0.5, 1, 0}, new boolean[] {true, true, true, false, false}, 1.0);

        assertThat(m.precision()).isCloseTo(2 / 3.0, within(1e-12));
        assertThat(m.recall()).isCloseTo(2 / 3.0, within(1e-12));
        assertThat(m.positives()).isEqualTo(3);
        assertThat(m.negatives()).isEqualTo(2);
    }

    @Test
    void oneClassOnlyIsRejected() {
        assertThatThrownBy(() -> ClassifierMetrics.of(new double[] {1}, new boolean[] {true}, 1)).hasMessageContaining("positives and negatives");
    }
}
