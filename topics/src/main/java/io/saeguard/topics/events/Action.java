package io.saeguard.topics.events;

import java.util.Arrays;
import java.util.Locale;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * What a decision asks the LLM server to do with the rest of the request (docs/architecture.md#the-wire-contract). Ordered
 * from least to most intrusive; serialised as the lower-case name.
 */
public enum Action {
    /** Nothing fired, or nothing worth acting on. */
    ALLOW,
    /** Let the request continue, but record it for review. */
    FLAG,
    /** Add {@code coefficient·v} to the residual stream in later forward passes (the decision names {@code v}). */
    STEER,
    /** Set the component along {@code v} to a fixed value in later forward passes. */
    CLAMP,
    /** Stop the request. */
    BLOCK;

    private static final String WIRE_NAMES =
            Arrays.stream(values()).map(Action::wireName).collect(Collectors.joining("|"));

    private final String wireName = name().toLowerCase(Locale.ROOT);

    /** The lower-case name used on the wire, as listed in the JSON Schemas. */
    public String wireName() {
        return wireName;
    }

    /** The constant with this exact wire name (case-sensitive, as the schema's {@code enum}), if any. */
    public static Optional<Action> fromWireName(String wireName) {
        for (Action value : values()) {
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
