package io.saeguard.detectors.rules;

import io.saeguard.detectors.Aggregation;
import io.saeguard.detectors.DetectorConfigException;
import io.saeguard.detectors.spi.ConfigNode;
import io.saeguard.detectors.spi.DetectorKind;
import io.saeguard.detectors.spi.TokenRule;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;

/**
 * The {@code dsg} rule kind ({@link DsgConfig}; docs/algorithms.md#dsg). It imposes its own aggregation, ρ,
 * so a dsg definition names no {@code aggregate}. YAML:
 * <pre>{@code
 * rule:
 *   kind: dsg
 *   tau: 0.12            # calibrated on benign data, e.g. by saeguard select
 *   window: 32           # optional: the windowed variant
 *   features: [101, 2057, 3310]      # or mappings: - {id: 101, threshold: 0.5, label: ...}
 * }</pre>
 */
public final class DsgKind implements DetectorKind<DsgConfig> {
    @Override
    public String name() {
        return DsgConfig.KIND;
    }

    @Override
    public Class<DsgConfig> configType() {
        return DsgConfig.class;
    }

    @Override
    public DsgConfig parse(ConfigNode rule) throws DetectorConfigException {
        rule.allowKeys("kind", "tau", "window", "features");
        double tau = rule.number("tau");
        if (!(tau > 0 && tau <= 1)) {
            throw rule.error("tau", "τ is a fraction of tokens and must be in (0, 1], found " + tau,
                    "calibrate τ on benign requests (e.g. the 95th percentile of their ρ; saeguard select does this)");
        }
        OptionalInt window = rule.optionalInteger("window");
        if (window.isPresent() && window.getAsInt() < 1) {
            throw rule.error("window", "must be >= 1, found " + window.getAsInt(), "write a window length in tokens such as 32");
        }
        List<ConfigNode> nodes = rule.list("features");
        if (nodes.isEmpty()) {
            throw rule.error("features", "the list is empty", "list the selected feature ids, e.g. 'features: [101, 2057]'");
        }
        List<DsgConfig.Feature> features = new ArrayList<>();
        Set<Integer> seen = new HashSet<>();
        for (ConfigNode n : nodes) {
            DsgConfig.Feature f;
            if (n.isMapping()) {
                n.allowKeys("id", "threshold", "label", "explanation");
                int id = n.integer("id");
                double threshold = n.optionalNumber("threshold").orElse(0);
                if (threshold < 0) {
                    throw n.error("threshold", "must be >= 0, found " + threshold, "write 0 (fires whenever active) or a positive activation");
                }
                if (id < 0) {
                    throw n.error("id", "feature ids are >= 0, found " + id, "use the feature's index in the SAE dictionary");
                }
                f = new DsgConfig.Feature(id, threshold, n.optionalString("label"), n.optionalString("explanation"));
            } else {
                int id = n.intValue();
                if (id < 0) {
                    throw n.error("feature ids are >= 0, found " + id, "use the feature's index in the SAE dictionary");
                }
                f = DsgConfig.Feature.of(id);
            }
            if (!seen.add(f.id())) {
                throw n.error("feature " + f.id() + " is listed twice", "list each feature once");
            }
            features.add(f);
        }
        return new DsgConfig(features, tau, window);
    }

    @Override
    public TokenRule create(DsgConfig config) {
        return new DsgRule(config);
    }

    @Override
    public Optional<Aggregation> aggregation(DsgConfig config) {
        return Optional.of(config.window().isPresent() ? Aggregation.fraction(config.window().getAsInt()) : Aggregation.fraction());
    }
}
