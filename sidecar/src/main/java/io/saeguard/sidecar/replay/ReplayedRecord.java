package io.saeguard.sidecar.replay;

import io.saeguard.topics.events.Decision;
import java.util.Objects;

/**
 * What the replay decided about one history record.
 *
 * @param topic     the record's topic (activations or prompts)
 * @param partition its partition
 * @param offset    its offset
 * @param decision  the replay's decision; its {@code seq} counts the request's chunks the replay decided before, as
 *                  production's does
 */
public record ReplayedRecord(String topic, int partition, long offset, Decision decision) {
    public ReplayedRecord {
        Objects.requireNonNull(topic, "topic");
        Objects.requireNonNull(decision, "decision");
    }

    public String requestId() {
        return decision.requestId();
    }

    public long position() {
        return decision.position();
    }
}
