package io.saeguard.sidecar.pipeline;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class TokenNormsTest {
    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3, 4, 5, 7, 8, 2304, 2305})
    void matchesAStraightSumOfSquaresPerRow(int dIn) {
        Random r = new Random(dIn);
        int tokens = 5;
        float[] x = new float[tokens * dIn];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (r.nextGaussian() * (1 + i % 13)); // rows differ, so a norm taken from the wrong row shows
        }
        x[2 * dIn + dIn - 1] = 1e6f; // the last element of a row counts, and only for that row
        float[] norms = TokenNorms.of(x, tokens, dIn);
        assertThat(norms).hasSize(tokens);
        for (int t = 0; t < tokens; t++) {
            double s = 0;
            for (int j = 0; j < dIn; j++) {
                s += (double) x[t * dIn + j] * x[t * dIn + j];
            }
            assertThat((double) norms[t]).as("row %d", t).isCloseTo(Math.sqrt(s), within(Math.sqrt(s) * 1e-6));
        }
        assertThat(norms[2]).isGreaterThanOrEqualTo(1e6f);
        assertThat(norms[1]).isLessThan(1e5f);
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 6})
    void aNonFiniteValueMakesOnlyItsRowNonFinite(int dIn) {
        float[] x = new float[3 * dIn];
        java.util.Arrays.fill(x, 2f);
        x[dIn] = Float.NaN;
        float[] norms = TokenNorms.of(x, 3, dIn);
        assertThat(norms[1]).isNaN();
        assertThat(norms[0]).isEqualTo((float) Math.sqrt(4.0 * dIn));
        assertThat(norms[2]).isEqualTo((float) Math.sqrt(4.0 * dIn));
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 5, 2304})
    void ofFiniteIsNullExactlyWhenSomeValueIsNotFinite(int dIn) {
        Random r = new Random(7 + dIn);
        float[] x = new float[4 * dIn];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian();
        }
        assertThat(TokenNorms.ofFinite(x, 4, dIn)).containsExactly(TokenNorms.of(x, 4, dIn));
        for (float bad : new float[] {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
            float[] y = x.clone();
            y[3 * dIn + dIn - 1] = bad; // the last value of the last row
            assertThat(TokenNorms.ofFinite(y, 4, dIn)).as("%s", bad).isNull();
        }
        float[] huge = new float[dIn];
        java.util.Arrays.fill(huge, Float.MAX_VALUE); // finite values whose norm overflows a float, but not the double sum
        assertThat(TokenNorms.ofFinite(huge, 1, dIn)).isNotNull();
    }
}
