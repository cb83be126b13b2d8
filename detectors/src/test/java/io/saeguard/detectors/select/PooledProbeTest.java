package io.saeguard.detectors.select;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class PooledProbeTest {
    private static final long SEED = System.nanoTime();

    static {
        System.out.println("PooledProbeTest seed: " + SEED);
    }

    @Test
    void sparseProbeNamesExactlyThePlantedFeaturesWithTheirSignsAndZeroElsewhere() {
        // Given 400 pooled rows of 60 features: feature 7 rises with the label, feature 41 falls, the rest are noise
        Random rnd = new Random(SEED);
        List<double[]> rows = new ArrayList<>();
        boolean[] y = new boolean[400];
        for (int i = 0; i < 400; i++) {
            y[i] = i % 2 == 0;
            double[] r = new double[60];
            for (int f = 0; f < 60; f++) {
                r[f] = Math.abs(rnd.nextGaussian()) * 0.2;
            }
            r[7] += y[i] ? 1.5 : 0;
            r[41] += y[i] ? 0 : 1.5;
            rows.add(r);
        }

        // When a 2-feature probe is trained
        PooledProbe p = PooledProbe.sparse(rows, y, 2, 1e-2);

        // Then it names 7 (positive weight) and 41 (negative weight) and nothing else, and separates the rows
        assertThat(p.features()).containsExactlyInAnyOrder(7, 41);
        assertThat(p.weight()[7]).isPositive();
        assertThat(p.weight()[41]).isNegative();
        for (int f = 0; f < 60; f++) {
            if (f != 7 && f != 41) {
                assertThat(p.weight()[f]).as("feature %d", f).isZero();
            }
        }
        int correct = 0;
        for (int i = 0; i < 400; i++) {
            correct += (p.probability(rows.get(i)) >= 0.5) == y[i] ? 1 : 0;
        }
        assertThat(correct).isGreaterThanOrEqualTo(390);
    }

    @Test
    void denseProbeRecoversTheDirectionOfANoiselessLinearRule() {
        // Given rows labelled by the sign of 2 x0 - x1 (margin 0.2 enforced)
        Random rnd = new Random(SEED + 1);
        List<double[]> rows = new ArrayList<>();
        List<Boolean> labels = new ArrayList<>();
        while (rows.size() < 300) {
            double[] r = {rnd.nextGaussian(), rnd.nextGaussian(), rnd.nextGaussian()};
            double z = 2 * r[0] - r[1];
            if (Math.abs(z) > 0.2) {
                rows.add(r);
                labels.add(z > 0);
            }
        }
        boolean[] y = new boolean[rows.size()];
        for (int i = 0; i < y.length; i++) {
            y[i] = labels.get(i);
        }

        // When the dense probe is trained
        PooledProbe p = PooledProbe.dense(rows, y, 1e-3);

        // Then its weights point along (2, -1, 0): cosine above 0.99
        double[] w = {p.weight()[0], p.weight()[1], p.weight()[2]};
        double cos = (2 * w[0] - w[1]) / (Math.sqrt(5) * Math.sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2]));
        assertThat(cos).isGreaterThan(0.99);
        assertThat(p.features()).containsExactly(0, 1, 2);
    }
}
