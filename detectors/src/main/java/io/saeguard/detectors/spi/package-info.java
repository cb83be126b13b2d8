/**
 * The rule-kind extension point: {@link io.saeguard.detectors.spi.DetectorKind} (a
 * {@link java.util.ServiceLoader} service named in YAML {@code rule.kind}) declares its config record
 * ({@link io.saeguard.detectors.spi.RuleConfig}), which is bound from YAML with Jackson and validated by its compact
 * constructor ({@link io.saeguard.detectors.spi.InvalidConfigException}), and builds a
 * {@link io.saeguard.detectors.spi.TokenRule} that scores tokens. A detector author needs only this package,
 * {@code io.saeguard.detectors}, {@code saeguard-topics} and Jackson's annotations.
 */
package io.saeguard.detectors.spi;
