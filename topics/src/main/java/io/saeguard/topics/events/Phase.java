package io.saeguard.topics.events;

import java.util.Arrays;
import java.util.Locale;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * Whether text or activations belong to the prompt (prefill) or to generated tokens. Serialised as
 * the lower-case name, as in the activation record's {@code phase} metadata entry.
 */
public enum Phase {
    PROMPT,
    GENERATION;

    private static final String WIRE_NAMES =
            Arrays.stream(values()).map(Phase::wireName).collect(Collectors.joining("|"));

    private final String wireName = name().toLowerCase(Locale.ROOT);

    /** The lower-case name used on the wire, as listed in the JSON Schemas. */
    public String wireName() {
        return wireName;
    }

    /** The constant with this exact wire name (case-sensitive, as the schema's {@code enum}), if any. */
    public static Optional<Phase> fromWireName(String wireName) {
        for (Phase value : values()) {
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
