package io.saeguard.detectors.spi;

/**
 * The parsed {@code rule:} node of a detector definition: an immutable record owned by one
 * {@link DetectorKind}. Implementations are records with value equality, so a definition parsed from
 * the YAML that {@code DetectorDefinitions.toYaml} wrote equals the original.
 */
public interface RuleConfig {
    /** The kind's short name, as written in YAML {@code rule.kind}. */
    String kind();
}
