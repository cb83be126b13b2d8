package io.saeguard.detectors.spi;

import io.saeguard.detectors.Aggregation;
import io.saeguard.detectors.DetectorConfigException;
import java.util.Optional;

/**
 * A rule kind: the extension point of the detectors module (docs/architecture.md#conventions). A kind parses its
 * {@code rule:} node into a config record ({@link #configType()}) and builds the {@link TokenRule}
 * that scores tokens at run time. Kinds are discovered with {@link java.util.ServiceLoader} from
 * {@code META-INF/services/io.saeguard.detectors.spi.DetectorKind} and named in YAML by
 * {@link #name()}; the implementation behind a kind stays package-private.
 *
 * <p><b>Writing back.</b> {@code DetectorDefinitions.toYaml} writes the config record with Jackson: its components
 * in declaration order with snake-case keys, absent {@code Optional}s left out. A record whose YAML differs from
 * that says so with Jackson annotations ({@code @JsonProperty}, {@code @JsonPropertyOrder}, {@code @JsonIgnore},
 * {@code @JsonInclude}, {@code @JsonValue}, {@code @JsonSerialize}) such that {@link #parse} reads the written
 * mapping back to an equal config.
 *
 * <p><b>Lifecycle and threading.</b> One instance per class loader, created by the service loader and
 * shared; it must be stateless. {@link #parse} runs on whichever thread loads
 * definitions. {@link #create} is called once per detector when an engine is built or a detector is
 * replaced; the {@link TokenRule} it returns is then used by exactly one thread (the engine's), so it
 * may keep scratch buffers without locks.
 *
 * @param <C> the config record
 */
public interface DetectorKind<C extends RuleConfig> {
    /** The short name used as YAML {@code rule.kind}, e.g. {@code features}. */
    String name();

    /** The config record's class. */
    Class<C> configType();

    /**
     * Parses the {@code rule:} mapping. The node includes the {@code kind} key, which the kind must
     * allow ({@link ConfigNode#allowKeys}); every other unknown key must be rejected.
     *
     * @throws DetectorConfigException naming the file, key and fix
     */
    C parse(ConfigNode rule) throws DetectorConfigException;

    /** Builds the run-time rule. The config has already been validated by {@link #parse} or its constructor. */
    TokenRule create(C config);

    /**
     * The aggregation this kind imposes, if any (dsg: its ρ, {@code fraction} with an optional window);
     * a definition of such a kind must not name its own {@code aggregate}. Empty by default: the
     * definition chooses.
     */
    default Optional<Aggregation> aggregation(C config) {
        return Optional.empty();
    }
}
