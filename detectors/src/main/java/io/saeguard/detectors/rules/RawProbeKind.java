package io.saeguard.detectors.rules;

import io.saeguard.detectors.spi.DetectorConfigException;
import io.saeguard.detectors.spi.DetectorKind;
import io.saeguard.detectors.spi.RuleContext;
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

    /** Loads the weights file, relative to the definition's directory. */
    @Override
    public RawProbeConfig resolve(RawProbeConfig bound, RuleContext context) throws DetectorConfigException {
        return bound.withWeights(ProbeWeights.read(context, "weights", bound.weightsPath(), "d_in"));
    }

    @Override
    public TokenRule create(RawProbeConfig config) {
        return new RawProbeRule(config);
    }
}
