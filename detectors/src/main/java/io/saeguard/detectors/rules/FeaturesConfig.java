package io.saeguard.detectors.rules;

import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonPropertyOrder;
import com.fasterxml.jackson.annotation.JsonValue;
import io.saeguard.detectors.spi.InvalidConfigException;
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
 * @param match     how the features combine (YAML default {@code any})
 * @param features  the features, at least one, ids unique
 * @param threshold the rule-level threshold; required for {@code weighted}, absent otherwise
 */
@JsonPropertyOrder({"match", "threshold", "features"})
public record FeaturesConfig(@JsonProperty(defaultValue = "any") Match match, List<Feature> features, OptionalDouble threshold) implements RuleConfig {
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
                throw new InvalidConfigException("id", "feature ids are >= 0, found " + id, "use the feature's index in the SAE dictionary");
            }
            if (threshold.isPresent() && !(threshold.getAsDouble() > 0 && Double.isFinite(threshold.getAsDouble()))) {
                throw new InvalidConfigException("threshold", "must be > 0, found " + threshold.getAsDouble(),
                        "write a positive activation such as 5.0");
            }
            if (weight.isPresent() && !Double.isFinite(weight.getAsDouble())) {
                throw new InvalidConfigException("weight", "must be finite, found " + weight.getAsDouble(), "write a number such as 0.5");
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
        boolean weighted = match == Match.WEIGHTED;
        if (weighted && threshold.isEmpty()) {
            throw new InvalidConfigException("threshold", "weighted matching needs a rule-level threshold (score = Σ weight·activation / threshold)",
                    "add 'threshold: 1.0' under 'rule'");
        }
        if (!weighted && threshold.isPresent()) {
            throw new InvalidConfigException("threshold", "a rule-level threshold is only used with 'match: weighted'",
                    "move the threshold onto each feature, or set 'match: weighted'");
        }
        if (threshold.isPresent() && !(threshold.getAsDouble() > 0 && Double.isFinite(threshold.getAsDouble()))) {
            throw new InvalidConfigException("threshold", "must be > 0, found " + threshold.getAsDouble(), "write a positive number such as 1.0");
        }
        if (features.isEmpty()) {
            throw new InvalidConfigException("features", "the list is empty", "list at least one feature: '- id: 123' with 'threshold: 5.0'");
        }
        Set<Integer> seen = new HashSet<>();
        for (int i = 0; i < features.size(); i++) {
            Feature f = features.get(i);
            String at = "features[" + i + "].";
            if (!seen.add(f.id())) {
                throw new InvalidConfigException(at + "id", "feature " + f.id() + " is listed twice", "list each feature once");
            }
            if (weighted) {
                if (f.threshold().isPresent()) {
                    throw new InvalidConfigException(at + "threshold", "per-feature thresholds are not used with 'match: weighted'",
                            "give each feature a 'weight' and the rule one 'threshold'");
                }
                if (f.weight().isEmpty()) {
                    throw new InvalidConfigException(at + "weight", "missing weight for weighted matching", "add 'weight: 1.0'");
                }
            } else {
                if (f.weight().isPresent()) {
                    throw new InvalidConfigException(at + "weight", "weights are only used with 'match: weighted'",
                            "remove 'weight', or set 'match: weighted'");
                }
                if (f.threshold().isEmpty()) {
                    throw new InvalidConfigException(at + "threshold", "missing threshold (the activation at which the feature scores 1)",
                            "add 'threshold: 5.0' (see the feature's activation histogram on Neuronpedia)");
                }
            }
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
