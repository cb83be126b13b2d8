package io.saeguard.topics.events;

import java.util.Arrays;
import java.util.Locale;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * Severity band of a decision, chosen by the detector's policy from the score (docs/algorithms.md#steering-and-clamping).
 * Serialised as the lower-case name.
 */
public enum Tier {
    LOW,
    MEDIUM,
    HIGH;

    private static final String WIRE_NAMES =
            Arrays.stream(values()).map(Tier::wireName).collect(Collectors.joining("|"));

    private final String wireName = name().toLowerCase(Locale.ROOT);

    /** The lower-case name used on the wire, as listed in the JSON Schemas. */
    public String wireName() {
        return wireName;
    }

    /** The constant with this exact wire name (case-sensitive, as the schema's {@code enum}), if any. */
    public static Optional<Tier> fromWireName(String wireName) {
        for (Tier value : values()) {
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
