package io.saeguard.detectors.rules;

import io.saeguard.detectors.spi.Aggregation;
import io.saeguard.detectors.spi.DetectorKind;
import io.saeguard.detectors.spi.TokenRule;
import java.util.Optional;

/**
 * The {@code dsg} rule kind ({@link DsgConfig}; docs/algorithms.md#dsg). It imposes its own aggregation, ρ,
 * so a dsg definition names no {@code aggregate}. The config binds as {@link DsgConfig} declares it (see
 * {@link DetectorKind}); its constructor checks τ, the window and the features. YAML:
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
    public TokenRule create(DsgConfig config) {
        return new DsgRule(config);
    }

    @Override
    public Optional<Aggregation> aggregation(DsgConfig config) {
        return Optional.of(config.window().isPresent() ? Aggregation.fraction(config.window().getAsInt()) : Aggregation.fraction());
    }
}
