package io.saeguard.topics.events;

import java.util.Arrays;
import java.util.Locale;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * A reviewer's verdict on an alert ({@link Review}). Serialised as the lower-case name: {@code true_positive} (the
 * detector was right), {@code false_positive} (it was wrong: a hard negative for the next selection), {@code unsure}
 * (the reviewer could not tell; kept, but never exported as labelled data).
 */
public enum Verdict {
    TRUE_POSITIVE,
    FALSE_POSITIVE,
    UNSURE;

    private static final String WIRE_NAMES =
            Arrays.stream(values()).map(Verdict::wireName).collect(Collectors.joining("|"));

    private final String wireName = name().toLowerCase(Locale.ROOT);

    /** The lower-case name used on the wire, as listed in {@code review.schema.json}. */
    public String wireName() {
        return wireName;
    }

    /** The constant with this exact wire name (case-sensitive, as the schema's {@code enum}), if any. */
    public static Optional<Verdict> fromWireName(String wireName) {
        for (Verdict value : values()) {
            if (value.wireName.equals(wireName)) {
                return Optional.of(value);
            }
        }
        return Optional.empty();
    }

    /** Every wire name, separated by {@code |}, for error messages. */
    public static String wireNames() {
        return WIRE_NAMES;
    }
}
