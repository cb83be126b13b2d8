package io.saeguard.detectors.rules;

import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonValue;
import io.saeguard.detectors.spi.RuleConfig;
import java.util.Objects;

/**
 * Config of the {@code probe} rule: logistic regression over a token's SAE codes, token score =
 * {@code σ(bias + Σ_f weight_f · a_f)}, a probability (a sparse dot product over the token's active
 * features; the sparse-probing baseline of docs/algorithms.md#probe-and-raw-probe). A token fires at probability {@code fireAt}.
 *
 * @param weightsPath the weights file as written in the YAML (relative to the definition's directory)
 * @param weights     the loaded weights, {@code weight [d_sae]}
 * @param fireAt      probability at which a token fires, in {@code (0, 1)}; default 0.5
 * @param tokenScore  whether a token's score is its probability or its logit (see {@link TokenScore})
 */
public record ProbeConfig(@JsonProperty("weights") String weightsPath, @JsonIgnore ProbeWeights weights, double fireAt,
        @JsonIgnore TokenScore tokenScore) implements RuleConfig {
    /** The YAML {@code rule.kind}. */
    public static final String KIND = "probe";

    public ProbeConfig {
        Objects.requireNonNull(weightsPath, "weightsPath");
        Objects.requireNonNull(weights, "weights");
        Objects.requireNonNull(tokenScore, "tokenScore");
        if (!(fireAt > 0 && fireAt < 1)) {
            throw new IllegalArgumentException("fire_at must be in (0, 1), got " + fireAt);
        }
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

        @JsonValue
        public String yamlName() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    /** YAML {@code token_score}, written only when not the default (probability). */
    @JsonProperty("token_score")
    java.util.Optional<String> tokenScoreForYaml() {
        return tokenScore == TokenScore.PROBABILITY ? java.util.Optional.empty() : java.util.Optional.of(tokenScore.yamlName());
    }

    @Override
    public String kind() {
        return KIND;
    }
}
