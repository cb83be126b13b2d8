package io.saeguard.sidecar.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class CommandLineTimeTest {
    @Test
    void epochMillisecondsAreTakenAsGiven() {
        // When
        long ms = CommandLineTime.parse("--from", "1796612400000");

        // Then
        assertThat(ms).isEqualTo(1_796_612_400_000L);
    }

    @Test
    void isoTimesInUtcAndWithAnOffsetNameTheSameInstant() {
        // When
        long utc = CommandLineTime.parse("--from", "2026-12-07T03:00:00Z");
        long offset = CommandLineTime.parse("--from", "2026-12-07T04:00:00+01:00");

        // Then
        assertThat(utc).isEqualTo(offset).isEqualTo(1_796_612_400_000L);
    }

    @Test
    void aTimeWithoutAZoneIsRefusedNamingTheOptionAndTheAcceptedForms() {
        // Then
        assertThatThrownBy(() -> CommandLineTime.parse("--to", "2026-12-07 03:00")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("--to").hasMessageContaining("'2026-12-07 03:00'").hasMessageContaining("ISO-8601")
                .hasMessageContaining("epoch milliseconds");
    }

    @Test
    void aDateIsMidnightUtc() {
        // When
        long ms = CommandLineTime.parse("--from", "2026-12-07");

        // Then
        assertThat(ms).isEqualTo(CommandLineTime.parse("--from", "2026-12-07T00:00:00Z"));
    }

    @Test
    void anImpossibleDateIsRefused() {
        // Then
        assertThatThrownBy(() -> CommandLineTime.parse("--from", "2026-13-40")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("--from").hasMessageContaining("'2026-13-40'");
    }
}
