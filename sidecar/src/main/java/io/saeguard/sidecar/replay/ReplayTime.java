package io.saeguard.sidecar.replay;

import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.format.DateTimeParseException;

/** The times {@code saeguard replay} takes: ISO-8601 with an offset or {@code Z}, or epoch milliseconds. */
public final class ReplayTime {
    private ReplayTime() {
    }

    /**
     * Parses a time given on the command line.
     *
     * @param option the option it came from, for the message ({@code --from})
     * @return epoch milliseconds
     * @throws IllegalArgumentException naming the option, the value and both accepted forms
     */
    public static long parse(String option, String value) {
        String v = value.strip();
        if (!v.isEmpty() && v.chars().allMatch(Character::isDigit)) {
            try {
                return Long.parseLong(v);
            } catch (NumberFormatException e) {
                throw problem(option, value);
            }
        }
        try {
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
        return new IllegalArgumentException(option + ": '" + value + "' is neither an ISO-8601 time with a zone (e.g. 2026-12-07T03:00:00Z or "
                + "2026-12-07T04:00:00+01:00) nor epoch milliseconds (e.g. 1796612400000); give one of those");
    }
}
