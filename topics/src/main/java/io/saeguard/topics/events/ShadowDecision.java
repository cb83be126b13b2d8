package io.saeguard.topics.events;

import java.util.Objects;

/**
 * What a shadow detector would have decided about a chunk, published to {@code saeguard.shadow}
 * (docs/architecture.md#the-wire-contract; schema {@code topics/schemas/shadow.schema.json}). On the wire it is the
 * decision's fields plus {@code "shadow": true}, so a consumer that reads both topics cannot mistake it for a decision
 * the applier acts on. It changes nothing: no applier reads this topic.
 *
 * <p>Unlike a decision, it always names its detector: one record per shadow detector whose action is not allow.
 *
 * @param decision the shadow detector's own decision (same {@code seq} and {@code position} as the record's decision)
 */
public record ShadowDecision(Decision decision) {
    public ShadowDecision {
        Objects.requireNonNull(decision, "decision");
        if (decision.detector().isEmpty()) {
            throw new IllegalArgumentException("a shadow decision needs a detector, but decision " + decision.seq()
                    + " of request " + decision.requestId() + " has none");
        }
    }

    /** The shadow detector's id. */
    public String detector() {
        return decision.detector().orElseThrow();
    }
}
