package io.saeguard.detectors.rules;

import io.saeguard.detectors.spi.Aggregation;
import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonPropertyOrder;
import com.fasterxml.jackson.databind.annotation.JsonSerialize;
import io.saeguard.detectors.spi.InvalidConfigException;
import io.saeguard.detectors.spi.RuleConfig;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;

/**
 * Config of the {@code dsg} rule, the Dynamic SAE Guardrail (Muhamed et al., arXiv 2504.08192;
 * docs/algorithms.md#dsg). A counted token <em>fires</em> when any selected feature's activation is
 * strictly above its threshold ({@code a_f(t) > θ_f}, θ defaulting to 0 as in the paper's code).
 * {@code ρ} is the fraction of fired tokens among the request's counted tokens so far, or with
 * {@code window: W} the largest such fraction over any {@code W} consecutive counted tokens (the
 * windowed variant that filler padding cannot dilute, docs/algorithms.md#windowed-dsg; see
 * {@code Aggregation.fraction(int)} for the exact definition).
 *
 * <p><b>Score.</b> {@code score = ρ / τ}. Bands compare with {@code ≥}, so a band at {@code min: 1.0}
 * applies when {@code ρ ≥ τ}. The paper intervenes on {@code ρ > τ} (strict); the two differ only
 * when ρ equals τ exactly (ρ is a ratio of small integers, so that can happen). {@code saeguard select}
 * therefore writes τ just above the calibration quantile, which makes {@code ρ ≥ τ} and the paper's
 * {@code ρ > quantile} the same rule.
 *
 * @param features the selected features S_N, at least one, ids unique; in YAML each a bare id or a mapping
 * @param tau      the calibrated threshold τ on ρ, in {@code (0, 1]}
 * @param window   W for the windowed variant
 */
@JsonPropertyOrder({"tau", "window", "features"})
public record DsgConfig(@JsonSerialize(using = DsgFeaturesWriter.class) List<Feature> features, double tau, OptionalInt window) implements RuleConfig {
    /** The YAML {@code rule.kind}. */
    public static final String KIND = "dsg";

    /**
     * A selected feature.
     *
     * @param id          feature index, {@code >= 0}
     * @param threshold   the feature fires above this activation, {@code >= 0} (default 0)
     * @param label       short human name, for alerts
     * @param explanation longer interpretation, for alerts
     */
    public record Feature(int id, @JsonProperty(defaultValue = "0") @JsonInclude(JsonInclude.Include.NON_DEFAULT) double threshold,
            Optional<String> label, Optional<String> explanation) {
        @JsonCreator(mode = JsonCreator.Mode.PROPERTIES)
        public Feature {
            Objects.requireNonNull(label, "label");
            Objects.requireNonNull(explanation, "explanation");
            if (id < 0) {
                throw new InvalidConfigException("id", "feature ids are >= 0, found " + id, "use the feature's index in the SAE dictionary");
            }
            if (!(threshold >= 0) || !Double.isFinite(threshold)) {
                throw new InvalidConfigException("threshold", "must be a finite number >= 0, found " + threshold,
                        "write 0 (fires whenever active) or a positive activation");
            }
        }

        /** A feature that fires whenever it is active ({@code a > 0}); in YAML, the bare id. */
        @JsonCreator(mode = JsonCreator.Mode.DELEGATING)
        public static Feature of(int id) {
            return new Feature(id, 0, Optional.empty(), Optional.empty());
        }

        boolean plain() {
            return threshold == 0 && label.isEmpty() && explanation.isEmpty();
        }
    }

    public DsgConfig {
        features = List.copyOf(features);
        Objects.requireNonNull(window, "window");
        if (!(tau > 0 && tau <= 1)) {
            throw new InvalidConfigException("tau", "τ is a fraction of tokens and must be in (0, 1], found " + tau,
                    "calibrate τ on benign requests (e.g. the 95th percentile of their ρ; saeguard select does this)");
        }
        if (window.isPresent() && window.getAsInt() < 1) {
            throw new InvalidConfigException("window", "must be >= 1, found " + window.getAsInt(), "write a window length in tokens such as 32");
        }
        if (features.isEmpty()) {
            throw new InvalidConfigException("features", "the list is empty", "list the selected feature ids, e.g. 'features: [101, 2057]'");
        }
        Set<Integer> seen = new HashSet<>();
        for (int i = 0; i < features.size(); i++) {
            if (!seen.add(features.get(i).id())) {
                throw new InvalidConfigException("features[" + i + "]", "feature " + features.get(i).id() + " is listed twice", "list each feature once");
            }
        }
    }

    @Override
    public String kind() {
        return KIND;
    }
}
