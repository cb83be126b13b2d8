/**
 * The rule-kind extension point: {@link io.saeguard.detectors.spi.DetectorKind} (a
 * {@link java.util.ServiceLoader} service named in YAML {@code rule.kind}) parses its config record
 * ({@link io.saeguard.detectors.spi.RuleConfig}) from a {@link io.saeguard.detectors.spi.ConfigNode}
 * and builds a {@link io.saeguard.detectors.spi.TokenRule} that scores tokens. A detector author needs
 * only this package, {@code io.saeguard.detectors} and {@code saeguard-topics}.
 */
package io.saeguard.detectors.spi;
