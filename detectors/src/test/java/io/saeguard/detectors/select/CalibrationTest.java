package io.saeguard.detectors.select;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

class CalibrationTest {
    private static final long SEED = System.nanoTime();

    static {
        System.out.println("CalibrationTest seed: " + SEED);
    }

    @Test
    void thresholdAtOnePercentOfAHundredNegativesLetsExactlyTheLargestThrough() {
        // Given negatives scoring 0.01, 0.02, ..., 1.00
        double[] neg = new double[100];
        for (int i = 0; i < 100; i++) {
            neg[i] = (i + 1) / 100.0;
        }

        // When calibrated to 1 % FPR
        double t = Calibration.thresholdAtFpr(neg, 0.01);

        // Then the threshold sits just above the second largest (0.99), so only 1.00 reaches it
        assertThat(t).isEqualTo(0.9901);
        assertThat(Arrays.stream(neg).filter(s -> s >= t).count()).isEqualTo(1);
    }

    @Test
    void randomNegativesNeverExceedTheTargetRateAndOneMoreWouldAtTheNextOrderStatistic() {
        Random rnd = new Random(SEED);
        for (int trial = 0; trial < 200; trial++) {
            // Given random negative scores, with ties, and a random target FPR
            int n = 1 + rnd.nextInt(500);
            double[] neg = new double[n];
            for (int i = 0; i < n; i++) {
                neg[i] = rnd.nextInt(4) == 0 ? Math.round(rnd.nextDouble() * 10) / 10.0 : rnd.nextGaussian() * 3;
            }
            double fpr = 0.001 + rnd.nextDouble() * 0.3;

            // When calibrated
            double t = Calibration.thresholdAtFpr(neg, fpr);

            // Then at most floor(fpr n) negatives reach it, and it lies strictly above the (floor(fpr n)+1)-th largest
            long through = Arrays.stream(neg).filter(s -> s >= t).count();
            assertThat(through).as("trial %d, n %d, fpr %s", trial, n, fpr).isLessThanOrEqualTo((long) Math.floor(fpr * n));
            double[] sorted = neg.clone();
            Arrays.sort(sorted);
            int allowed = Math.min((int) Math.floor(fpr * n), n - 1);
            assertThat(t).isGreaterThan(sorted[n - 1 - allowed]);
        }
    }

    @Test
    void negativesThatAllScoreZeroGiveAPositiveThresholdAnyPositiveScoreReaches() {
        // Given negatives that never fire (a dsg rate of 0)
        double[] neg = new double[50];

        // When calibrated
        double t = Calibration.thresholdAtFpr(neg, 0.01);

        // Then a zero score is allowed, the smallest positive one flagged
        assertThat(t).isGreaterThan(0).isLessThanOrEqualTo(1e-300);
    }

    @Test
    void negativeScoresGetAFourDigitThresholdJustAboveTheLargest() {
        // Given logit-like negative scores
        double[] neg = {-3.5, -2.25, -1.23456};

        // When calibrated with fewer negatives than one false positive needs
        double t = Calibration.thresholdAtFpr(neg, 0.01);

        // Then the threshold is the 4-significant-digit number just above the largest
        assertThat(t).isEqualTo(-1.234);
    }

    @Test
    void tprAtOnePercentFprCountsPositivesStrictlyAboveTheSecondLargestOfAHundredNegatives() {
        // Given 100 negatives at 0.00..0.99 and positives at 0.985, 0.995 and 0.5
        double[] scores = new double[103];
        boolean[] labels = new boolean[103];
        for (int i = 0; i < 100; i++) {
            scores[i] = i / 100.0;
        }
        scores[100] = 0.985;
        scores[101] = 0.995;
        scores[102] = 0.5;
        labels[100] = labels[101] = labels[102] = true;

        // When TPR at 1 % FPR is computed
        double tpr = Calibration.tprAtFpr(scores, labels, 0.01);

        // Then the cut is the second largest negative (0.98): two of three positives lie above it
        assertThat(tpr).isEqualTo(2 / 3.0);
    }
}
