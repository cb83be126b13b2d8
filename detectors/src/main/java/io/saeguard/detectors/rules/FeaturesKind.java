package io.saeguard.detectors.rules;

import io.saeguard.detectors.rules.FeaturesConfig.Feature;
import io.saeguard.detectors.spi.DetectorKind;
import io.saeguard.detectors.spi.TokenRule;
import java.util.List;
import java.util.Optional;

/**
 * The {@code features} rule kind: thresholds on listed SAE features, combined by {@code any},
 * {@code all} or a weighted sum ({@link FeaturesConfig}, which declares the keys and checks how they combine). YAML:
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
