package io.saeguard.topics.catalog;

import java.util.Locale;
import java.util.Optional;

/** The part each topic plays in the pipeline (docs/architecture.md#the-wire-contract); names are configurable, roles are not. */
public enum TopicRole {
    ACTIVATIONS,
    PROMPTS,
    DECISIONS,
    ALERTS,
    SHADOW,
    STEERING,
    DETECTORS,
    REVIEWS,
    DEADLETTER;

    /** The key used in {@code topics.yaml} and config files. */
    public String key() {
        return name().toLowerCase(Locale.ROOT);
    }

    public static Optional<TopicRole> fromKey(String key) {
        for (TopicRole r : values()) {
            if (r.key().equals(key)) {
                return Optional.of(r);
            }
        }
        return Optional.empty();
    }
}
