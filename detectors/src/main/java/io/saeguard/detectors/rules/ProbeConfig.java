package io.saeguard.detectors.rules;

import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonProperty;
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
 */
public record ProbeConfig(@JsonProperty("weights") String weightsPath, @JsonIgnore ProbeWeights weights, double fireAt) implements RuleConfig {
    /** The YAML {@code rule.kind}. */
    public static final String KIND = "probe";

    public ProbeConfig {
        Objects.requireNonNull(weightsPath, "weightsPath");
        Objects.requireNonNull(weights, "weights");
        if (!(fireAt > 0 && fireAt < 1)) {
            throw new IllegalArgumentException("fire_at must be in (0, 1), got " + fireAt);
        }
    }

    @Override
    public String kind() {
        return KIND;
    }
}
