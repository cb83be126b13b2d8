package io.saeguard.sidecar.cli;

import java.time.Instant;
import java.time.LocalDate;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeParseException;

/**
 * The times that {@code --from} and {@code --to} take in {@code saeguard capture}, {@code replay} and
 * {@code reviews export}: epoch milliseconds, ISO-8601 with {@code Z} or an offset, or a date (midnight UTC).
 */
final class CommandLineTime {
    private CommandLineTime() {
    }

    /**
     * Parses a time given on the command line.
     *
     * @param option the option it came from, for the message ({@code --from})
     * @return epoch milliseconds
     * @throws IllegalArgumentException naming the option, the value and the accepted forms
     */
    static long parse(String option, String value) {
        String v = value.strip();
        if (!v.isEmpty() && v.chars().allMatch(Character::isDigit)) {
            try {
                return Long.parseLong(v);
            } catch (NumberFormatException e) {
                throw problem(option, value);
            }
        }
        try {
            if (v.matches("[0-9]{4}-[0-9]{2}-[0-9]{2}")) {
                return LocalDate.parse(v).atStartOfDay(ZoneOffset.UTC).toInstant().toEpochMilli();
            }
            return Instant.parse(v).toEpochMilli();
        } catch (DateTimeParseException e) {
            try {
                return OffsetDateTime.parse(v).toInstant().toEpochMilli();
            } catch (DateTimeParseException e2) {
                throw problem(option, value);
            }
        }
    }

    private static IllegalArgumentException problem(String option, String value) {
        return new IllegalArgumentException(option + ": '" + value + "' is not a time: give an ISO-8601 time with a zone (e.g. "
                + "2026-12-07T03:00:00Z or 2026-12-07T04:00:00+01:00), a date (2026-12-07, midnight UTC) or epoch milliseconds "
                + "(e.g. 1796612400000)");
    }
}
