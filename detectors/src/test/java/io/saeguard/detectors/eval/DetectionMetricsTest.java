package io.saeguard.detectors.eval;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.Random;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

class DetectionMetricsTest {
    private static final double[] SCORES = {0.9, 0.8, 0.7, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1};
    private static final boolean[] LABELS = {true, true, false, true, false, true, false, false, false, false};
    private static final boolean[] FLAGGED = {true, true, true, false, false, false, false, false, false, true};

    @Test
    void handComputedAurocCountsTiesHalf() {
        // Given 4 positives (0.9, 0.8, 0.7, 0.5) and 6 negatives (0.7, 0.6, 0.4, 0.3, 0.2, 0.1):
        // 0.9 and 0.8 beat all 6; 0.7 beats 5 and ties 1 (5.5); 0.5 beats 4: (6 + 6 + 5.5 + 4) / 24
        DetectionMetrics m = DetectionMetrics.of(SCORES, FLAGGED, LABELS, 0.01);

        assertThat(m.auroc()).isCloseTo(21.5 / 24, within(1e-12));
        assertThat(m.positives()).isEqualTo(4);
        assertThat(m.negatives()).isEqualTo(6);
    }

    @Test
    void handComputedTprAtOnePercentFprTakesTheThresholdAboveTheHighestNegative() {
        // Given 6 negatives, at 1 % none may score at or above τ: τ is the lowest score above 0.7, the top negative = 0.8
        DetectionMetrics m = DetectionMetrics.of(SCORES, FLAGGED, LABELS, 0.01);

        assertThat(m.threshold()).isEqualTo(0.8);
        assertThat(m.tprAtTargetFpr()).isEqualTo(0.5);
        assertThat(m.fprAtThreshold()).isZero();
    }

    @Test
    void handComputedTprAtAHigherTargetLetsTheAllowedNegativesThrough() {
        // Given a target of 20 % over 6 negatives: ⌊1.2⌋ = 1 negative may score ≥ τ; the 2nd highest negative is 0.6,
        // so τ is the lowest score above it, 0.7, and the positives at or above it are 0.9, 0.8, 0.7
        DetectionMetrics m = DetectionMetrics.of(SCORES, FLAGGED, LABELS, 0.2);

        assertThat(m.threshold()).isEqualTo(0.7);
        assertThat(m.tprAtTargetFpr()).isEqualTo(0.75);
        assertThat(m.fprAtThreshold()).isCloseTo(1 / 6.0, within(1e-12));
    }

    @Test
    void aNegativeOnTopLeavesNoPositiveAboveTheThreshold() {
        // Given the highest score is a negative and none may be flagged
        DetectionMetrics m = DetectionMetrics.of(new double[] {1, 2, 3}, new boolean[3], new boolean[] {true, true, false}, 0.01);

        assertThat(m.threshold()).isEqualTo(Math.nextUp(3.0));
        assertThat(m.tprAtTargetFpr()).isZero();
    }

    @Test
    void handComputedPrecisionAndRecallComeFromThePolicyNotTheScore() {
        // Given the policy flagged positives 0.9 and 0.8 and negatives 0.7 and 0.1
        DetectionMetrics m = DetectionMetrics.of(SCORES, FLAGGED, LABELS, 0.01);

        assertThat(m.truePositives()).isEqualTo(2);
        assertThat(m.falsePositives()).isEqualTo(2);
        assertThat(m.falseNegatives()).isEqualTo(2);
        assertThat(m.trueNegatives()).isEqualTo(4);
        assertThat(m.precision()).isEqualTo(0.5);
        assertThat(m.recall()).isEqualTo(0.5);
    }

    @Test
    void nothingFlaggedHasNoPrecision() {
        DetectionMetrics m = DetectionMetrics.of(SCORES, new boolean[SCORES.length], LABELS, 0.01);

        assertThat(m.precision()).isNaN();
        assertThat(m.recall()).isZero();
    }

    @Test
    void aFailedDetectorsNaNScoreIsLeftOutOfAurocButCountedAtThePolicy() {
        // Given the negative 0.7 failed (NaN) and its fail mode flagged it
        double[] s = SCORES.clone();
        s[2] = Double.NaN;

        DetectionMetrics m = DetectionMetrics.of(s, FLAGGED, LABELS, 0.01);

        // Then the AUROC is over 4 × 5 pairs: (5 + 5 + 5 + 4) / 20, and the false positive still counts
        assertThat(m.unscored()).isEqualTo(1);
        assertThat(m.auroc()).isCloseTo(19 / 20.0, within(1e-12));
        assertThat(m.falsePositives()).isEqualTo(2);
        assertThat(m.threshold()).isEqualTo(0.7);
    }

    @Test
    void oneClassOnlyHasNoAurocOrTpr() {
        DetectionMetrics m = DetectionMetrics.of(new double[] {1, 2}, new boolean[] {true, false}, new boolean[] {true, true}, 0.01);

        assertThat(m.auroc()).isNaN();
        assertThat(m.threshold()).isNaN();
        assertThat(m.tprAtTargetFpr()).isNaN();
        assertThat(m.recall()).isEqualTo(0.5);
    }

    @Test
    void aTargetOutsideZeroAndOneIsRefused() {
        assertThatThrownBy(() -> DetectionMetrics.of(SCORES, FLAGGED, LABELS, 1.0)).hasMessageContaining("must be in (0, 1)");
    }

    @Test
    void aurocAndThresholdEqualABruteForceOfTheirDefinitionsOnRandomTiedScores() {
        long seed = System.nanoTime();
        System.out.println("DetectionMetricsTest seed " + seed);
        Random rnd = new Random(seed);
        for (int round = 0; round < 50; round++) {
            // Given random scores with many ties, both classes present
            int n = 2 + rnd.nextInt(400);
            double[] s = new double[n];
            boolean[] y = new boolean[n];
            for (int i = 0; i < n; i++) {
                y[i] = i == 0 || (i != 1 && rnd.nextBoolean());
                s[i] = rnd.nextInt(30) + (y[i] ? rnd.nextInt(6) : 0);
            }
            double target = rnd.nextDouble() * 0.2 + 0.001;

            // When
            DetectionMetrics m = DetectionMetrics.of(s, new boolean[n], y, target);

            // Then the AUROC is the pairwise count, ties half
            double wins = 0;
            long pairs = 0;
            int neg = 0;
            for (int i = 0; i < n; i++) {
                neg += y[i] ? 0 : 1;
                for (int j = 0; j < n; j++) {
                    if (y[i] && !y[j]) {
                        pairs++;
                        wins += s[i] > s[j] ? 1 : s[i] == s[j] ? 0.5 : 0;
                    }
                }
            }
            assertThat(m.auroc()).as("seed %d round %d", seed, round).isCloseTo(wins / pairs, within(1e-12));
            // And τ is the smallest observed score with at most ⌊target·n⁻⌋ negatives at or above it
            long allowed = (long) Math.floor(target * neg + 1e-9);
            TreeSet<Double> candidates = new TreeSet<>();
            for (double v : s) {
                candidates.add(v);
            }
            double expected = Math.nextUp(candidates.last());
            for (double t : candidates) {
                int negAbove = 0;
                for (int i = 0; i < n; i++) {
                    negAbove += !y[i] && s[i] >= t ? 1 : 0;
                }
                if (negAbove <= allowed) {
                    expected = t;
                    break;
                }
            }
            assertThat(m.threshold()).as("seed %d round %d", seed, round).isEqualTo(expected);
            assertThat(m.fprAtThreshold()).isLessThanOrEqualTo(target + 1e-12);
        }
    }

    @Test
    void theBootstrapIntervalIsReproducibleAndHoldsTheAuroc() {
        // Given overlapping classes
        Random rnd = new Random(3);
        double[] s = new double[300];
        boolean[] y = new boolean[300];
        for (int i = 0; i < s.length; i++) {
            y[i] = i % 2 == 0;
            s[i] = rnd.nextGaussian() + (y[i] ? 1 : 0);
        }

        // When
        double[] ci = DetectionMetrics.aurocInterval(s, y, 500, 42, 0.95);

        // Then
        double auroc = DetectionMetrics.auroc(s, y);
        assertThat(ci[0]).isLessThan(auroc).isGreaterThan(auroc - 0.1);
        assertThat(ci[1]).isGreaterThan(auroc).isLessThan(auroc + 0.1);
        assertThat(DetectionMetrics.aurocInterval(s, y, 500, 42, 0.95)).containsExactly(ci);
    }
}
