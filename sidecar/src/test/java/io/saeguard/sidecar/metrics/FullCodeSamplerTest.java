package io.saeguard.sidecar.metrics;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Random;
import org.junit.jupiter.api.Test;

class FullCodeSamplerTest {
    private static final int D_IN = 4;

    private static FullCodeSampler sampler(double fraction) {
        return new FullCodeSampler(new FeatureStats("s", 8, java.util.Optional.empty(), 1000, 1000), D_IN, fraction, new Random(7));
    }

    @Test
    void aNewFractionAppliesToTheTokensDrawnFromThenOn() {
        // Given a sample that draws almost nothing
        FullCodeSampler s = sampler(1e-9);
        float[] x = new float[200 * D_IN];
        s.sample(x, 0, 200, 0, 0);
        assertThat(s.pending()).isZero();

        // When the fraction rises to every token
        s.fraction(1.0);
        boolean full = s.sample(x, 0, 200, 200, 0);

        // Then each of the 200 is drawn, short of a group of 256
        assertThat(s.pending()).isEqualTo(200);
        assertThat(full).isFalse();
        assertThat(s.sample(x, 0, 200, 400, 0)).isTrue();
        assertThat(s.pending()).isEqualTo(FullCodeSampler.ROWS);
    }

    @Test
    void aSampleCreatedOffStaysOff() {
        FullCodeSampler s = sampler(0);
        s.fraction(1.0);
        s.sample(new float[10 * D_IN], 0, 10, 0, 0);
        assertThat(s.pending()).isZero();
    }
}
