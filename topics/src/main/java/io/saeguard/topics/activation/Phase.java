package io.saeguard.topics.activation;

import java.util.Locale;
import java.util.Optional;

/** Where in a request's life the tokens of a chunk come from. */
public enum Phase {
    /** The prompt (prefill) tokens. */
    PROMPT,
    /** Tokens produced by decoding. */
    GENERATION;

    /** The wire form: {@code prompt} or {@code generation}. */
    public String wireName() {
        return name().toLowerCase(Locale.ROOT);
    }

    public static Optional<Phase> fromWire(String s) {
        for (Phase p : values()) {
            if (p.wireName().equals(s)) {
                return Optional.of(p);
            }
        }
        return Optional.empty();
    }
}
