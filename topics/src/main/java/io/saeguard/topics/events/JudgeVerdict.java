package io.saeguard.topics.events;

import java.util.Objects;
import java.util.Optional;
import java.util.OptionalLong;

/**
 * A judge's answer to a {@link JudgeRequest}, published to {@code saeguard.judge-verdicts} keyed by the request id
 * (schema {@code topics/schemas/judge-verdict.schema.json}; docs/architecture.md#judge-cascade). The sidecar holding the
 * request's escalation turns it into the request's next decision.
 *
 * @param requestId the judged request (non-empty); also the Kafka record key
 * @param detector  the detector that escalated, as in the request
 * @param action    the judge's action: {@code allow}, {@code flag} or {@code block} (a judge sees text, not a direction
 *                  to steer or clamp along)
 * @param reason    the judge's short explanation (possibly empty)
 * @param judge     which judge answered (its model name), if it says
 * @param ts        when the judge answered, epoch milliseconds, if it says
 */
public record JudgeVerdict(String requestId, String detector, Action action, String reason, Optional<String> judge, OptionalLong ts) {

    public JudgeVerdict {
        EventInvariants.nonEmpty(requestId, "request_id");
        EventInvariants.nonEmpty(detector, "detector");
        Objects.requireNonNull(action, "action");
        if (!allowed(action)) {
            throw new IllegalArgumentException("a judge's action must be allow, flag or block, got " + action.wireName());
        }
        Objects.requireNonNull(reason, "reason");
        EventInvariants.nonEmpty(judge, "judge");
        EventInvariants.nonNegative(ts, "ts");
    }

    /** Whether a judge may answer {@code action} (and a band fall back to it): allow, flag or block. */
    public static boolean allowed(Action action) {
        return action == Action.ALLOW || action == Action.FLAG || action == Action.BLOCK;
    }
}
