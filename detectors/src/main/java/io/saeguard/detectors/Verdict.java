package io.saeguard.detectors;

import io.saeguard.topics.events.Action;
import io.saeguard.topics.events.Tier;
import java.util.Objects;
import java.util.Optional;

/**
 * What one detector concluded about one chunk, for metrics ({@code saeguard_detector_score},
 * {@code saeguard_decisions_total}).
 *
 * @param detector the detector id
 * @param score    its score after aggregation (finite)
 * @param action   the action its policy chose (after tier rules), {@code ALLOW} below every band
 * @param tier     the steering tier, for {@code STEER}
 * @param alert    whether this verdict raised an alert in this chunk
 */
public record Verdict(String detector, double score, Action action, Optional<Tier> tier, boolean alert) {
    public Verdict {
        Objects.requireNonNull(detector, "detector");
        Objects.requireNonNull(action, "action");
        Objects.requireNonNull(tier, "tier");
    }
}
