package io.saeguard.detectors.rules;

import io.saeguard.detectors.DetectorConfigException;
import io.saeguard.detectors.spi.ConfigNode;
import io.saeguard.detectors.spi.DetectorKind;
import io.saeguard.detectors.spi.TokenRule;

/**
 * The {@code raw-probe} rule kind ({@link RawProbeConfig}). YAML:
 * <pre>{@code
 * rule:
 *   kind: raw-probe
 *   weights: toxicity-raw.safetensors   # weight [d_in], bias [1]; relative to this file
 *   fire_at: 0.5                        # optional
 *   token_score: probability            # optional: probability | logit (as for probe)
 * }</pre>
 * Detectors of this kind make the sidecar ship raw activations with the SAE's chunks.
 */
public final class RawProbeKind implements DetectorKind<RawProbeConfig> {
    @Override
    public String name() {
        return RawProbeConfig.KIND;
    }

    @Override
    public Class<RawProbeConfig> configType() {
        return RawProbeConfig.class;
    }

    @Override
    public RawProbeConfig parse(ConfigNode rule) throws DetectorConfigException {
        rule.allowKeys("kind", "weights", "fire_at", "token_score");
        double fireAt = ProbeKind.fireAt(rule);
        return new RawProbeConfig(rule.string("weights"), ProbeWeights.read(rule, "weights", "d_in"), fireAt,
                ProbeKind.tokenScore(rule));
    }

    @Override
    public TokenRule create(RawProbeConfig config) {
        return new RawProbeRule(config);
    }
}
