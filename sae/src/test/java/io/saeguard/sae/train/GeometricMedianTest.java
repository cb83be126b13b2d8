package io.saeguard.sae.train;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import org.junit.jupiter.api.Test;

class GeometricMedianTest {
    @Test
    void aFarOutlierMovesTheMedianBoundedlyWhereItDragsTheMean() {
        // Given four corners of a square around (1, 1) plus one outlier on its diagonal, once at 1000 and once at 10^6
        float[] near = {0, 0, 2, 0, 0, 2, 2, 2, 1000, 1000};
        float[] far = {0, 0, 2, 0, 0, 2, 2, 2, 1e6f, 1e6f};

        // When their geometric medians are computed
        float[] a = GeometricMedian.of(near, 5, 2, 500, 1e-12);
        float[] b = GeometricMedian.of(far, 5, 2, 500, 1e-12);

        // Then both sit inside the square where the corners' unit vectors balance the outlier's,
        // (1 + 1/sqrt(3), 1 + 1/sqrt(3)), however far the outlier is (the means: 200.8 and 200,000.8)
        double expected = 1 + 1 / Math.sqrt(3);
        for (float[] m : new float[][] {a, b}) {
            assertThat((double) m[0]).isCloseTo(expected, within(1e-3));
            assertThat((double) m[1]).isCloseTo(expected, within(1e-3));
        }
    }

    @Test
    void symmetricPointsHaveTheirCentreAsMedian() {
        float[] rows = {-1, 5, 1, 5, 0, 4, 0, 6};

        float[] m = GeometricMedian.of(rows, 4, 2, 100, 1e-9);

        assertThat((double) m[0]).isCloseTo(0.0, within(1e-6));
        assertThat((double) m[1]).isCloseTo(5.0, within(1e-6));
    }
}
