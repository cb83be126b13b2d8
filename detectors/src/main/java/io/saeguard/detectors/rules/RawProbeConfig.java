package io.saeguard.detectors.rules;

import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonProperty;
import io.saeguard.detectors.spi.RuleConfig;
import java.util.Objects;

/**
 * Config of the {@code raw-probe} rule: logistic regression over a token's raw activation, token score
 * = {@code σ(bias + weight · x_t)}. The strong baseline the sparse-probing paper found hard to beat
 * (docs/algorithms.md#probe-and-raw-probe); it needs the chunk's activations. A token fires at probability {@code fireAt}.
 *
 * @param weightsPath the weights file as written in the YAML (relative to the definition's directory)
 * @param weights     the loaded weights, {@code weight [d_in]}
 * @param fireAt      probability at which a token fires, in {@code (0, 1)}; default 0.5
 * @param tokenScore  whether a token's score is its probability or its logit ({@link ProbeConfig.TokenScore})
 */
public record RawProbeConfig(@JsonProperty("weights") String weightsPath, @JsonIgnore ProbeWeights weights, double fireAt,
        @JsonIgnore ProbeConfig.TokenScore tokenScore) implements RuleConfig {
    /** The YAML {@code rule.kind}. */
    public static final String KIND = "raw-probe";

    public RawProbeConfig {
        Objects.requireNonNull(weightsPath, "weightsPath");
        Objects.requireNonNull(weights, "weights");
        Objects.requireNonNull(tokenScore, "tokenScore");
        if (!(fireAt > 0 && fireAt < 1)) {
            throw new IllegalArgumentException("fire_at must be in (0, 1), got " + fireAt);
        }
    }

    /** YAML {@code token_score}, written only when not the default (probability). */
    @JsonProperty("token_score")
    java.util.Optional<String> tokenScoreForYaml() {
        return tokenScore == ProbeConfig.TokenScore.PROBABILITY ? java.util.Optional.empty() : java.util.Optional.of(tokenScore.yamlName());
    }

    @Override
    public String kind() {
        return KIND;
    }
}
