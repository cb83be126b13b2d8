package io.saeguard.detectors.rules;

import io.saeguard.detectors.DetectorConfigException;
import io.saeguard.detectors.rules.FeaturesConfig.Feature;
import io.saeguard.detectors.rules.FeaturesConfig.Match;
import io.saeguard.detectors.spi.ConfigNode;
import io.saeguard.detectors.spi.DetectorKind;
import io.saeguard.detectors.spi.TokenRule;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.Set;

/**
 * The {@code features} rule kind: thresholds on listed SAE features, combined by {@code any},
 * {@code all} or a weighted sum ({@link FeaturesConfig}). YAML:
 * <pre>{@code
 * rule:
 *   kind: features
 *   match: any            # any | all | weighted (default any)
 *   threshold: 3.0        # weighted only
 *   features:
 *     - id: 6631
 *       threshold: 5.0    # any/all; 'weight: 0.5' for weighted
 *       label: profanity and slurs
 *       explanation: fires on insults   # optional
 * }</pre>
 */
public final class FeaturesKind implements DetectorKind<FeaturesConfig> {
    @Override
    public String name() {
        return FeaturesConfig.KIND;
    }

    @Override
    public Class<FeaturesConfig> configType() {
        return FeaturesConfig.class;
    }

    @Override
    public FeaturesConfig parse(ConfigNode rule) throws DetectorConfigException {
        rule.allowKeys("kind", "match", "threshold", "features");
        Match match = rule.has("match") ? Match.valueOf(rule.choice("match", "any", "all", "weighted").toUpperCase(java.util.Locale.ROOT)) : Match.ANY;
        boolean weighted = match == Match.WEIGHTED;
        OptionalDouble threshold = rule.optionalNumber("threshold");
        if (weighted && threshold.isEmpty()) {
            throw rule.error("threshold", "weighted matching needs a rule-level threshold (score = Σ weight·activation / threshold)",
                    "add 'threshold: 1.0' under 'rule'");
        }
        if (!weighted && threshold.isPresent()) {
            throw rule.error("threshold", "a rule-level threshold is only used with 'match: weighted'",
                    "move the threshold onto each feature, or set 'match: weighted'");
        }
        if (threshold.isPresent() && !(threshold.getAsDouble() > 0)) {
            throw rule.error("threshold", "must be > 0, found " + threshold.getAsDouble(), "write a positive number such as 1.0");
        }
        List<ConfigNode> nodes = rule.list("features");
        if (nodes.isEmpty()) {
            throw rule.error("features", "the list is empty", "list at least one feature: '- id: 123' with 'threshold: 5.0'");
        }
        List<Feature> features = new ArrayList<>();
        Set<Integer> seen = new HashSet<>();
        for (ConfigNode n : nodes) {
            if (!n.isMapping()) {
                throw n.error("expected a mapping with 'id' and '" + (weighted ? "weight" : "threshold") + "'",
                        "write '- id: 123' and, indented below it, '" + (weighted ? "weight: 1.0" : "threshold: 5.0") + "'");
            }
            n.allowKeys("id", "threshold", "weight", "label", "explanation");
            int id = n.integer("id");
            if (id < 0) {
                throw n.error("id", "feature ids are >= 0, found " + id, "use the feature's index in the SAE dictionary");
            }
            if (!seen.add(id)) {
                throw n.error("id", "feature " + id + " is listed twice", "list each feature once");
            }
            OptionalDouble t = n.optionalNumber("threshold");
            OptionalDouble w = n.optionalNumber("weight");
            if (weighted) {
                if (t.isPresent()) {
                    throw n.error("threshold", "per-feature thresholds are not used with 'match: weighted'",
                            "give each feature a 'weight' and the rule one 'threshold'");
                }
                if (w.isEmpty()) {
                    throw n.error("weight", "missing weight for weighted matching", "add 'weight: 1.0'");
                }
            } else {
                if (w.isPresent()) {
                    throw n.error("weight", "weights are only used with 'match: weighted'", "remove 'weight', or set 'match: weighted'");
                }
                if (t.isEmpty()) {
                    throw n.error("threshold", "missing threshold (the activation at which the feature scores 1)",
                            "add 'threshold: 5.0' (see the feature's activation histogram on Neuronpedia)");
                }
                if (!(t.getAsDouble() > 0)) {
                    throw n.error("threshold", "must be > 0, found " + t.getAsDouble(), "write a positive activation such as 5.0");
                }
            }
            features.add(new Feature(id, t, w, n.optionalString("label"), n.optionalString("explanation")));
        }
        return new FeaturesConfig(match, features, threshold);
    }

    @Override
    public TokenRule create(FeaturesConfig config) {
        return new FeaturesRule(config);
    }

    static Optional<String> find(List<Feature> features, int id, boolean label) {
        for (Feature f : features) {
            if (f.id() == id) {
                return label ? f.label() : f.explanation();
            }
        }
        return Optional.empty();
    }
}
