package io.saeguard.detectors;

import io.saeguard.topics.events.Alert;
import io.saeguard.topics.events.Decision;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * The result of evaluating one chunk: exactly one decision (action {@code ALLOW} with no detector when
 * nothing reached a band), the alerts raised, one verdict per detector evaluated, and the decisions shadow
 * detectors would have made.
 *
 * @param decision the most severe live verdict's decision (block &gt; clamp &gt; steer &gt; flag &gt; allow; ties by higher
 *                 score); shadow verdicts never count
 * @param alerts   alerts raised by this chunk by live detectors, in detector order; possibly empty
 * @param verdicts one per detector of the chunk's SAE, live and shadow, in definition order
 * @param shadow   one decision per shadow detector whose action is not {@code ALLOW}, in definition order, for the
 *                 {@code saeguard.shadow} topic; each names its detector
 * @param escalation present when the decision came from an {@code escalate} band (the decision is then a {@code FLAG}):
 *                 the sidecar asks the judge and publishes its verdict, or the fallback, as the request's next decision
 *                 (docs/architecture.md#judge-cascade)
 */
public record ChunkOutcome(Decision decision, List<Alert> alerts, List<Verdict> verdicts, List<Decision> shadow,
        Optional<Policy.Escalation> escalation) {
    public ChunkOutcome {
        Objects.requireNonNull(decision, "decision");
        alerts = List.copyOf(alerts);
        verdicts = List.copyOf(verdicts);
        shadow = List.copyOf(shadow);
        Objects.requireNonNull(escalation, "escalation");
    }

    /** An outcome without escalation. */
    public ChunkOutcome(Decision decision, List<Alert> alerts, List<Verdict> verdicts, List<Decision> shadow) {
        this(decision, alerts, verdicts, shadow, Optional.empty());
    }

    /** An outcome without shadow detectors. */
    public ChunkOutcome(Decision decision, List<Alert> alerts, List<Verdict> verdicts) {
        this(decision, alerts, verdicts, List.of());
    }

    /** A copy with other alerts (e.g. with text excerpts added). */
    public ChunkOutcome withAlerts(List<Alert> replacement) {
        return new ChunkOutcome(decision, replacement, verdicts, shadow, escalation);
    }
}
