package io.saeguard.sae.engine;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

class CpuFeaturesTest {
    @Test
    void nativeBf16NeedsAvx512Bf16OrAmxBf16InTheFlagsLine() {
        assertThat(CpuFeatures.hasNativeBf16(List.of("processor\t: 0", "flags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni"))).isTrue();
        assertThat(CpuFeatures.hasNativeBf16(List.of("flags\t\t: fpu avx2 amx_tile amx_bf16 amx_int8"))).isTrue();
        assertThat(CpuFeatures.hasNativeBf16(List.of("flags\t\t: fpu avx2 avx512f avx512_vnni", "bugs\t\t: avx512_bf16"))).isFalse();
        assertThat(CpuFeatures.hasNativeBf16(List.of("model name\t: something"))).isFalse();
    }
}
