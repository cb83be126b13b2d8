package io.saeguard.topics.events;

import java.util.Objects;
import java.util.Optional;

/**
 * A feature in an alert: the decision's {@link FeatureRef} plus what a reviewer needs to read it,
 * taken from an optional label bundle. Wire form {@code {"sae", "id", "value", "label"?, "explanation"?}}.
 *
 * @param ref         the feature as the decision names it
 * @param label       a short human name for the feature, e.g. {@code "references to weapons"}
 * @param explanation a longer automated or human interpretation of the feature
 */
public record AlertFeature(FeatureRef ref, Optional<String> label, Optional<String> explanation) {
    public AlertFeature {
        Objects.requireNonNull(ref, "ref");
        Objects.requireNonNull(label, "label");
        Objects.requireNonNull(explanation, "explanation");
    }

    /** The feature without label or explanation. */
    public static AlertFeature of(FeatureRef ref) {
        return new AlertFeature(ref, Optional.empty(), Optional.empty());
    }

    public AlertFeature withLabel(String label) {
        return new AlertFeature(ref, Optional.of(label), explanation);
    }

    public AlertFeature withExplanation(String explanation) {
        return new AlertFeature(ref, label, Optional.of(explanation));
    }
}
