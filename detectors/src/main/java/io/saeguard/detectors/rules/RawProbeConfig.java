package io.saeguard.detectors.rules;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonProperty;
import io.saeguard.detectors.spi.InvalidConfigException;
import io.saeguard.detectors.spi.RuleConfig;
import java.util.Objects;
import java.util.Optional;

/**
 * Config of the {@code raw-probe} rule: logistic regression over a token's raw activation, token score
 * = {@code σ(bias + weight · x_t)}. The strong baseline the sparse-probing paper found hard to beat
 * (docs/algorithms.md#probe-and-raw-probe); it needs the chunk's activations. A token fires at probability {@code fireAt}.
 *
 * @param weightsPath the weights file as written in the YAML (relative to the definition's directory)
 * @param loaded      the weights, {@code weight [d_in]}; empty only between binding the YAML and
 *                    {@link RawProbeKind#resolve} loading the file (see {@link #weights()})
 * @param fireAt      probability at which a token fires, in {@code (0, 1)}; YAML default 0.5
 * @param tokenScoreSetting YAML {@code token_score}, as for {@link ProbeConfig}
 */
public record RawProbeConfig(@JsonProperty("weights") String weightsPath, @JsonIgnore Optional<ProbeWeights> loaded,
        @JsonProperty(defaultValue = "0.5") double fireAt, @JsonProperty("token_score") Optional<ProbeConfig.TokenScore> tokenScoreSetting)
        implements RuleConfig {
    /** The YAML {@code rule.kind}. */
    public static final String KIND = "raw-probe";

    @JsonCreator(mode = JsonCreator.Mode.PROPERTIES)
    public RawProbeConfig {
        Objects.requireNonNull(weightsPath, "weightsPath");
        Objects.requireNonNull(loaded, "loaded");
        Objects.requireNonNull(tokenScoreSetting, "tokenScoreSetting");
        if (!(fireAt > 0 && fireAt < 1)) {
            throw new InvalidConfigException("fire_at", "a probability strictly between 0 and 1 is needed, found " + fireAt,
                    "write e.g. 'fire_at: 0.5'");
        }
    }

    /** A config with its weights loaded, scoring tokens by probability. */
    public RawProbeConfig(String weightsPath, ProbeWeights weights, double fireAt) {
        this(weightsPath, Optional.of(weights), fireAt, Optional.empty());
    }

    /** A config with its weights loaded. */
    public RawProbeConfig(String weightsPath, ProbeWeights weights, double fireAt, ProbeConfig.TokenScore tokenScore) {
        this(weightsPath, Optional.of(weights), fireAt,
                tokenScore == ProbeConfig.TokenScore.PROBABILITY ? Optional.empty() : Optional.of(tokenScore));
    }

    /** What a token's score is: the probability unless the YAML says {@code token_score: logit}. */
    public ProbeConfig.TokenScore tokenScore() {
        return tokenScoreSetting.orElse(ProbeConfig.TokenScore.PROBABILITY);
    }

    /**
     * The loaded weights.
     *
     * @throws IllegalStateException for a config bound from YAML and not yet resolved, which no definition holds
     */
    public ProbeWeights weights() {
        return loaded.orElseThrow(() -> new IllegalStateException("the weights '" + weightsPath + "' are not loaded yet"));
    }

    RawProbeConfig withWeights(ProbeWeights weights) {
        return new RawProbeConfig(weightsPath, Optional.of(weights), fireAt, tokenScoreSetting);
    }

    @Override
    public String kind() {
        return KIND;
    }
}
