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
    DEADLETTER,
    /** Requests for judgement from escalate bands (docs/architecture.md#judge-cascade). */
    JUDGE,
    /** Judges' verdicts, co-partitioned with the activations and consumed with them. */
    JUDGE_VERDICTS,
    /** Per-request detector state, keyed by request id, partitioned like the input topics (docs/architecture.md#request-state). */
    STATE;

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
