package io.saeguard.topics.safetensors;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class HalfFloatsTest {
    @Test
    void everyF16BitPatternRoundTripsThroughF32() {
        // Exhaustive: all 65536 half values widen exactly and narrow back to the same bits (NaNs stay NaN).
        for (int bits = 0; bits < 1 << 16; bits++) {
            float f = HalfFloats.f16ToFloat((short) bits);
            short back = HalfFloats.floatToF16(f);
            if (Float.isNaN(f)) {
                assertThat(Float.isNaN(HalfFloats.f16ToFloat(back))).isTrue();
            } else {
                assertThat(back & 0xffff).as("bits %04x", bits).isEqualTo(bits);
            }
        }
    }

    @Test
    void f16KnownValues() {
        assertThat(HalfFloats.f16ToFloat((short) 0x3c00)).isEqualTo(1.0f);
        assertThat(HalfFloats.f16ToFloat((short) 0xc000)).isEqualTo(-2.0f);
        assertThat(HalfFloats.f16ToFloat((short) 0x7bff)).isEqualTo(65504f);
        assertThat(HalfFloats.f16ToFloat((short) 0x0001)).isEqualTo(0x1p-24f);
        assertThat(HalfFloats.floatToF16(1e6f)).isEqualTo((short) 0x7c00);
        // 1 + 2^-11 is halfway between 1 and the next half; ties go to even (1.0).
        assertThat(HalfFloats.floatToF16(1f + 0x1p-11f)).isEqualTo((short) 0x3c00);
        assertThat(HalfFloats.floatToF16(1f + 0x1p-11f + 0x1p-20f)).isEqualTo((short) 0x3c01);
    }

    @Test
    void bf16WidensExactlyAndRoundsToNearestEven() {
        assertThat(HalfFloats.bf16ToFloat((short) 0x3f80)).isEqualTo(1.0f);
        assertThat(HalfFloats.floatToBf16(1.0f)).isEqualTo((short) 0x3f80);
        // 1 + 2^-8 is halfway between bf16 neighbours 1 and 1 + 2^-7: ties to even (1.0).
        assertThat(HalfFloats.floatToBf16(1f + 0x1p-8f)).isEqualTo((short) 0x3f80);
        assertThat(HalfFloats.floatToBf16(1f + 0x1p-8f + 0x1p-20f)).isEqualTo((short) 0x3f81);
        assertThat(Float.isNaN(HalfFloats.bf16ToFloat(HalfFloats.floatToBf16(Float.NaN)))).isTrue();
    }
}
