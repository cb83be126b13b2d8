package io.saeguard.sidecar.replay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class ReplayTimeTest {
    @Test
    void epochMillisecondsAreTakenAsGiven() {
        // When
        long ms = ReplayTime.parse("--from", "1796612400000");

        // Then
        assertThat(ms).isEqualTo(1_796_612_400_000L);
    }

    @Test
    void isoTimesInUtcAndWithAnOffsetNameTheSameInstant() {
        // When
        long utc = ReplayTime.parse("--from", "2026-12-07T03:00:00Z");
        long offset = ReplayTime.parse("--from", "2026-12-07T04:00:00+01:00");

        // Then
        assertThat(utc).isEqualTo(offset).isEqualTo(1_796_612_400_000L);
    }

    @Test
    void aTimeWithoutAZoneIsRefusedNamingTheOptionAndBothForms() {
        // Then
        assertThatThrownBy(() -> ReplayTime.parse("--to", "2026-12-07 03:00")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("--to").hasMessageContaining("'2026-12-07 03:00'").hasMessageContaining("ISO-8601")
                .hasMessageContaining("epoch milliseconds");
    }
}
