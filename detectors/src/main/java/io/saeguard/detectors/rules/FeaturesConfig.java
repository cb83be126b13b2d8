package io.saeguard.detectors.rules;

import com.fasterxml.jackson.annotation.JsonPropertyOrder;
import com.fasterxml.jackson.annotation.JsonValue;
import io.saeguard.detectors.spi.RuleConfig;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.Set;

/**
 * Config of the {@code features} rule: listed SAE features with thresholds (docs/algorithms.md#features-rule, issue 5).
 * With {@code a_f} the feature's activation at a token:
 * <ul>
 *   <li>{@code any}: token score = {@code max_f a_f / threshold_f} (≥ 1: some feature reached its threshold);</li>
 *   <li>{@code all}: token score = {@code min_f a_f / threshold_f} (≥ 1: every feature did);</li>
 *   <li>{@code weighted}: token score = {@code Σ_f weight_f · a_f / threshold} with one rule-level threshold.</li>
 * </ul>
 *
 * @param match     how the features combine
 * @param features  the features, at least one, ids unique
 * @param threshold the rule-level threshold; required for {@code weighted}, absent otherwise
 */
@JsonPropertyOrder({"match", "threshold", "features"})
public record FeaturesConfig(Match match, List<Feature> features, OptionalDouble threshold) implements RuleConfig {
    /** The YAML {@code rule.kind}. */
    public static final String KIND = "features";

    /** How listed features combine into a token score. */
    public enum Match {
        ANY, ALL, WEIGHTED;

        @JsonValue
        public String yamlName() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /**
     * One listed feature.
     *
     * @param id          feature index, {@code >= 0}
     * @param threshold   activation that scores 1; required ({@code > 0}) for {@code any}/{@code all}, absent for {@code weighted}
     * @param weight      weight in the sum; required for {@code weighted}, absent otherwise
     * @param label       short human name, shown in alerts
     * @param explanation longer interpretation (e.g. Neuronpedia's), shown in alerts
     */
    public record Feature(int id, OptionalDouble threshold, OptionalDouble weight, Optional<String> label,
            Optional<String> explanation) {
        public Feature {
            Objects.requireNonNull(threshold, "threshold");
            Objects.requireNonNull(weight, "weight");
            Objects.requireNonNull(label, "label");
            Objects.requireNonNull(explanation, "explanation");
            if (id < 0) {
                throw new IllegalArgumentException("feature id must be >= 0, got " + id);
            }
            if (threshold.isPresent() && !(threshold.getAsDouble() > 0 && Double.isFinite(threshold.getAsDouble()))) {
                throw new IllegalArgumentException("threshold of feature " + id + " must be a finite number > 0");
            }
            if (weight.isPresent() && !Double.isFinite(weight.getAsDouble())) {
                throw new IllegalArgumentException("weight of feature " + id + " must be finite");
            }
        }

        /** A feature for {@code any}/{@code all} matching. */
        public static Feature withThreshold(int id, double threshold) {
            return new Feature(id, OptionalDouble.of(threshold), OptionalDouble.empty(), Optional.empty(), Optional.empty());
        }

        /** A feature for {@code weighted} matching. */
        public static Feature withWeight(int id, double weight) {
            return new Feature(id, OptionalDouble.empty(), OptionalDouble.of(weight), Optional.empty(), Optional.empty());
        }

        public Feature withLabel(String text) {
            return new Feature(id, threshold, weight, Optional.of(text), explanation);
        }

        public Feature withExplanation(String text) {
            return new Feature(id, threshold, weight, label, Optional.of(text));
        }
    }

    public FeaturesConfig {
        Objects.requireNonNull(match, "match");
        features = List.copyOf(features);
        Objects.requireNonNull(threshold, "threshold");
        if (features.isEmpty()) {
            throw new IllegalArgumentException("a features rule needs at least one feature");
        }
        Set<Integer> seen = new HashSet<>();
        for (Feature f : features) {
            if (!seen.add(f.id())) {
                throw new IllegalArgumentException("feature " + f.id() + " is listed twice");
            }
            boolean weighted = match == Match.WEIGHTED;
            if (weighted == f.threshold().isPresent() || weighted != f.weight().isPresent()) {
                throw new IllegalArgumentException(weighted
                        ? "weighted matching needs a weight and no threshold on feature " + f.id()
                        : match.yamlName() + " matching needs a threshold and no weight on feature " + f.id());
            }
        }
        if ((match == Match.WEIGHTED) != threshold.isPresent()) {
            throw new IllegalArgumentException("a rule-level threshold is required for weighted matching and only then");
        }
        if (threshold.isPresent() && !(threshold.getAsDouble() > 0 && Double.isFinite(threshold.getAsDouble()))) {
            throw new IllegalArgumentException("the rule-level threshold must be a finite number > 0");
        }
    }

    /** {@code any} matching over these features. */
    public static FeaturesConfig any(List<Feature> features) {
        return new FeaturesConfig(Match.ANY, features, OptionalDouble.empty());
    }

    @Override
    public String kind() {
        return KIND;
    }
}
