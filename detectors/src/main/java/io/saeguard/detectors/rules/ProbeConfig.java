package io.saeguard.detectors.rules;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonValue;
import io.saeguard.detectors.spi.InvalidConfigException;
import io.saeguard.detectors.spi.RuleConfig;
import java.util.Objects;
import java.util.Optional;

/**
 * Config of the {@code probe} rule: logistic regression over a token's SAE codes, token score =
 * {@code σ(bias + Σ_f weight_f · a_f)}, a probability (a sparse dot product over the token's active
 * features; the sparse-probing baseline of docs/algorithms.md#probe-and-raw-probe). A token fires at probability {@code fireAt}.
 *
 * @param weightsPath the weights file as written in the YAML (relative to the definition's directory)
 * @param loaded      the weights, {@code weight [d_sae]}; empty only between binding the YAML and
 *                    {@link ProbeKind#resolve} loading the file (see {@link #weights()})
 * @param fireAt      probability at which a token fires, in {@code (0, 1)}; YAML default 0.5
 * @param tokenScoreSetting YAML {@code token_score}: whether a token's score is its probability (absent: the default) or
 *                    its logit (see {@link TokenScore}, {@link #tokenScore()})
 */
public record ProbeConfig(@JsonProperty("weights") String weightsPath, @JsonIgnore Optional<ProbeWeights> loaded,
        @JsonProperty(defaultValue = "0.5") double fireAt, @JsonProperty("token_score") Optional<TokenScore> tokenScoreSetting)
        implements RuleConfig {
    /** The YAML {@code rule.kind}. */
    public static final String KIND = "probe";

    @JsonCreator(mode = JsonCreator.Mode.PROPERTIES)
    public ProbeConfig {
        Objects.requireNonNull(weightsPath, "weightsPath");
        Objects.requireNonNull(loaded, "loaded");
        Objects.requireNonNull(tokenScoreSetting, "tokenScoreSetting");
        if (!(fireAt > 0 && fireAt < 1)) {
            throw new InvalidConfigException("fire_at", "a probability strictly between 0 and 1 is needed, found " + fireAt,
                    "write e.g. 'fire_at: 0.5'");
        }
    }

    /** A config with its weights loaded, scoring tokens by probability. */
    public ProbeConfig(String weightsPath, ProbeWeights weights, double fireAt) {
        this(weightsPath, Optional.of(weights), fireAt, Optional.empty());
    }

    /** A config with its weights loaded. */
    public ProbeConfig(String weightsPath, ProbeWeights weights, double fireAt, TokenScore tokenScore) {
        this(weightsPath, Optional.of(weights), fireAt, tokenScore == TokenScore.PROBABILITY ? Optional.empty() : Optional.of(tokenScore));
    }

    /** What a token's score is: the probability unless the YAML says {@code token_score: logit}. */
    public TokenScore tokenScore() {
        return tokenScoreSetting.orElse(TokenScore.PROBABILITY);
    }

    /**
     * What a probe's token score is (YAML {@code token_score}, shared by {@code probe} and {@code raw-probe}).
     * With {@code logit} the token score is {@code z_t = bias + weight · x_t}, a token fires at
     * {@code logit(fire_at)}, and the detector's score is {@code σ(aggregate)}: with {@code aggregate: mean}
     * that is {@code σ(bias + weight · mean_t x_t)}, exactly the mean-pooled probe {@code saeguard select}
     * trains (a linear map commutes with the mean), and with {@code max} it equals the probability mode's
     * score. {@code count} and {@code fraction} count fired tokens and do not fit the logit mode.
     */
    public enum TokenScore {
        /** {@code σ(z_t)}, the default. */
        PROBABILITY,
        /** {@code z_t}; the detector's score is {@code σ(aggregate)}. */
        LOGIT;

        /** The YAML name, {@code probability} or {@code logit}. */
        @JsonValue
        public String yamlName() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    /**
     * The loaded weights.
     *
     * @throws IllegalStateException for a config bound from YAML and not yet resolved, which no definition holds
     */
    public ProbeWeights weights() {
        return loaded.orElseThrow(() -> new IllegalStateException("the weights '" + weightsPath + "' are not loaded yet"));
    }

    ProbeConfig withWeights(ProbeWeights weights) {
        return new ProbeConfig(weightsPath, Optional.of(weights), fireAt, tokenScoreSetting);
    }

    @Override
    public String kind() {
        return KIND;
    }
}
