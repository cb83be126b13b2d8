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
 * @param score    its score after aggregation; NaN when the detector failed with an error
 * @param action   the action its policy chose (after tier rules and its fail mode), {@code ALLOW} below every band
 * @param tier     the steering tier, for {@code STEER}
 * @param alert    whether this verdict raised an alert in this chunk
 * @param failure  how the detector failed on this chunk ({@link DetectorEngine}, "Failures"); empty when it did not
 * @param shadow   whether the detector runs in shadow mode ({@link DetectorDefinition.Mode#SHADOW}): its action is
 *                 what it would have done; it took no part in the decision and raised no alert
 */
public record Verdict(String detector, double score, Action action, Optional<Tier> tier, boolean alert, Optional<Failure> failure,
        boolean shadow) {

    /**
     * A detector's failure on one chunk.
     *
     * @param kind    {@link #ERROR} (it could not evaluate the chunk) or {@link #DEADLINE} (it evaluated it after
     *                {@code deadline_ms}); the {@code reason} label of {@code saeguard_detector_failures_total}
     * @param message what went wrong: the exception's message, or the chunk's age against the deadline
     */
    public record Failure(String kind, String message) {
        public static final String ERROR = "error";
        public static final String DEADLINE = "deadline";

        public Failure {
            Objects.requireNonNull(kind, "kind");
            Objects.requireNonNull(message, "message");
        }
    }

    public Verdict {
        Objects.requireNonNull(detector, "detector");
        Objects.requireNonNull(action, "action");
        Objects.requireNonNull(tier, "tier");
        Objects.requireNonNull(failure, "failure");
        if (shadow && alert) {
            throw new IllegalArgumentException("a shadow verdict raises no alert");
        }
    }

    /** A live verdict without a failure. */
    public Verdict(String detector, double score, Action action, Optional<Tier> tier, boolean alert) {
        this(detector, score, action, tier, alert, Optional.empty(), false);
    }

    /** A live verdict. */
    public Verdict(String detector, double score, Action action, Optional<Tier> tier, boolean alert, Optional<Failure> failure) {
        this(detector, score, action, tier, alert, failure, false);
    }

    /** The metric label of its mode, {@code live} or {@code shadow}. */
    public String mode() {
        return (shadow ? DetectorDefinition.Mode.SHADOW : DetectorDefinition.Mode.LIVE).yamlName();
    }
}
