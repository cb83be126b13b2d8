package io.saeguard.topics.events;

import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalInt;
import java.util.OptionalLong;

/**
 * The value rules the JSON Schemas in {@code topics/schemas/} state, checked again in the records'
 * constructors so that an event built in Java always encodes to schema-valid JSON.
 */
final class EventInvariants {
    private EventInvariants() {}

    /** Identifiers (request, detector, SAE, vector, model ids) are non-empty strings: schema {@code minLength: 1}. */
    static String nonEmpty(String value, String field) {
        Objects.requireNonNull(value, field);
        if (value.isEmpty()) {
            throw new IllegalArgumentException(field + " must not be empty");
        }
        return value;
    }

    static Optional<String> nonEmpty(Optional<String> value, String field) {
        Objects.requireNonNull(value, field).ifPresent(v -> nonEmpty(v, field));
        return value;
    }

    static long nonNegative(long value, String field) {
        if (value < 0) {
            throw new IllegalArgumentException(field + " must be >= 0, got " + value);
        }
        return value;
    }

    static OptionalLong nonNegative(OptionalLong value, String field) {
        Objects.requireNonNull(value, field).ifPresent(v -> nonNegative(v, field));
        return value;
    }

    static OptionalInt nonNegative(OptionalInt value, String field) {
        Objects.requireNonNull(value, field).ifPresent(v -> nonNegative(v, field));
        return value;
    }

    /** JSON has no NaN or infinities, so a number field must be finite to be encodable at all. */
    static double finite(double value, String field) {
        if (!Double.isFinite(value)) {
            throw new IllegalArgumentException(field + " must be a finite number, got " + value);
        }
        return value;
    }

    static OptionalDouble finite(OptionalDouble value, String field) {
        Objects.requireNonNull(value, field).ifPresent(v -> finite(v, field));
        return value;
    }

    static OptionalDouble finiteNonNegative(OptionalDouble value, String field) {
        Objects.requireNonNull(value, field).ifPresent(v -> {
            if (!(v >= 0) || !Double.isFinite(v)) {
                throw new IllegalArgumentException(field + " must be a finite number >= 0, got " + v);
            }
        });
        return value;
    }

    /** An immutable copy; rejects a null list or null elements. */
    static <T> List<T> immutable(List<T> list, String field) {
        return List.copyOf(Objects.requireNonNull(list, field));
    }

    /** Describes a payload-bearing string by its length, so {@code toString} never leaks prompt text into logs. */
    static String redacted(String text) {
        return "<" + text.length() + " chars>";
    }
}
