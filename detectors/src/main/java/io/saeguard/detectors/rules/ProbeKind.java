package io.saeguard.detectors.rules;

import io.saeguard.detectors.spi.DetectorConfigException;
import io.saeguard.detectors.spi.DetectorKind;
import io.saeguard.detectors.spi.RuleContext;
import io.saeguard.detectors.spi.TokenRule;

/**
 * The {@code probe} rule kind ({@link ProbeConfig}). YAML:
 * <pre>{@code
 * rule:
 *   kind: probe
 *   weights: toxicity-probe.safetensors   # weight [d_sae], bias [1]; relative to this file
 *   fire_at: 0.5                          # optional
 *   token_score: probability              # optional: probability | logit (score = σ(aggregate); see ProbeConfig.TokenScore)
 * }</pre>
 * Probes name no features: steer and clamp bands need {@code policy.vector_feature}.
 */
public final class ProbeKind implements DetectorKind<ProbeConfig> {
    @Override
    public String name() {
        return ProbeConfig.KIND;
    }

    @Override
    public Class<ProbeConfig> configType() {
        return ProbeConfig.class;
    }

    /** Loads the weights file, relative to the definition's directory. */
    @Override
    public ProbeConfig resolve(ProbeConfig bound, RuleContext context) throws DetectorConfigException {
        return bound.withWeights(ProbeWeights.read(context, "weights", bound.weightsPath(), "d_sae"));
    }

    @Override
    public TokenRule create(ProbeConfig config) {
        return new ProbeRule(config);
    }
}
