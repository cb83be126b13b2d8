package io.saeguard.topics.events;

import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalDouble;

/**
 * A request for judgement, published to {@code saeguard.judge} when a detector's {@code escalate} band decided a record
 * (schema {@code topics/schemas/judge-request.schema.json}; docs/architecture.md#judge-cascade). A judge worker answers
 * with a {@link JudgeVerdict} on {@code saeguard.judge-verdicts}, keyed by the same request id.
 *
 * @param requestId the request to judge (non-empty); also the Kafka record key
 * @param seq       the seq of the escalating decision (published as {@code flag}); the verdict's decision comes later
 * @param detector  the detector whose escalate band was reached
 * @param score     the detector's score, when it had one
 * @param position  the token position the escalating decision applies from
 * @param features  the SAE features behind it, most important first; possibly empty
 * @param excerpt   the text of the prompt event that was escalated, when the event carried text (never for activations)
 * @param timeoutMs how long the sidecar waits for a verdict before it applies {@code fallback}, {@code > 0}
 * @param fallback  what the sidecar decides when no verdict arrives in time
 * @param ts        when the request was made, epoch milliseconds
 */
public record JudgeRequest(String requestId, long seq, String detector, OptionalDouble score, long position, List<FeatureRef> features,
        Optional<String> excerpt, long timeoutMs, Action fallback, long ts) {

    public JudgeRequest {
        EventInvariants.nonEmpty(requestId, "request_id");
        EventInvariants.nonNegative(seq, "seq");
        EventInvariants.nonEmpty(detector, "detector");
        EventInvariants.finite(score, "score");
        EventInvariants.nonNegative(position, "position");
        features = EventInvariants.immutable(features, "features");
        Objects.requireNonNull(excerpt, "excerpt");
        if (timeoutMs <= 0) {
            throw new IllegalArgumentException("judge_timeout_ms must be > 0, got " + timeoutMs);
        }
        Objects.requireNonNull(fallback, "fallback");
        EventInvariants.nonNegative(ts, "ts");
    }
}
