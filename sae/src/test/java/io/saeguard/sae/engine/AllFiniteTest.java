package io.saeguard.sae.engine;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** {@link DeviceSae#allFinite}: one comparison of the largest magnitude's bits stands in for a test per value. */
class AllFiniteTest {
    @Test
    void finiteValuesPassIncludingTheExtremes() {
        float[] x = {0f, -0f, 1f, -1f, Float.MAX_VALUE, -Float.MAX_VALUE, Float.MIN_VALUE, -Float.MIN_NORMAL, 1e-40f};
        assertThat(DeviceSae.allFinite(x, x.length)).isTrue();
    }

    @Test
    void anyNanOrInfinityAnywhereFails() {
        Random random = new Random(7);
        float[] bad = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.intBitsToFloat(0xffc00001),
            Float.intBitsToFloat(0x7f800001)};
        for (float b : bad) {
            float[] x = new float[1000];
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) random.nextGaussian();
            }
            int at = random.nextInt(x.length);
            x[at] = b;
            assertThat(DeviceSae.allFinite(x, x.length)).as("%s at %d", b, at).isFalse();
            // only the first n values count
            assertThat(DeviceSae.allFinite(x, at)).as("prefix before %d", at).isTrue();
        }
    }
}
