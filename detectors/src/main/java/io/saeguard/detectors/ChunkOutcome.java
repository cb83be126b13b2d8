package io.saeguard.detectors;

import io.saeguard.topics.events.Alert;
import io.saeguard.topics.events.Decision;
import java.util.List;
import java.util.Objects;

/**
 * The result of evaluating one chunk: exactly one decision (action {@code ALLOW} with no detector when
 * nothing reached a band), the alerts raised, and one verdict per detector evaluated.
 *
 * @param decision the most severe verdict's decision (block &gt; clamp &gt; steer &gt; flag &gt; allow; ties by higher score)
 * @param alerts   alerts raised by this chunk, in detector order; possibly empty
 * @param verdicts one per detector of the chunk's SAE, in definition order
 */
public record ChunkOutcome(Decision decision, List<Alert> alerts, List<Verdict> verdicts) {
    public ChunkOutcome {
        Objects.requireNonNull(decision, "decision");
        alerts = List.copyOf(alerts);
        verdicts = List.copyOf(verdicts);
    }
}
