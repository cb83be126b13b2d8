package io.saeguard.detectors.rules;

import io.saeguard.detectors.DetectorConfigException;
import io.saeguard.detectors.spi.ConfigNode;
import io.saeguard.detectors.spi.DetectorKind;
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

    @Override
    public ProbeConfig parse(ConfigNode rule) throws DetectorConfigException {
        rule.allowKeys("kind", "weights", "fire_at", "token_score");
        double fireAt = fireAt(rule);
        return new ProbeConfig(rule.string("weights"), ProbeWeights.read(rule, "weights", "d_sae"), fireAt, tokenScore(rule));
    }

    static ProbeConfig.TokenScore tokenScore(ConfigNode rule) throws DetectorConfigException {
        if (!rule.has("token_score")) {
            return ProbeConfig.TokenScore.PROBABILITY;
        }
        return rule.choice("token_score", "probability", "logit").equals("logit")
                ? ProbeConfig.TokenScore.LOGIT : ProbeConfig.TokenScore.PROBABILITY;
    }

    static double fireAt(ConfigNode rule) throws DetectorConfigException {
        double fireAt = rule.optionalNumber("fire_at").orElse(0.5);
        if (!(fireAt > 0 && fireAt < 1)) {
            throw rule.error("fire_at", "a probability strictly between 0 and 1 is needed, found " + fireAt, "write e.g. 'fire_at: 0.5'");
        }
        return fireAt;
    }

    @Override
    public TokenRule create(ProbeConfig config) {
        return new ProbeRule(config);
    }
}
