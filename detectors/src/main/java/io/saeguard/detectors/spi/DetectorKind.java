package io.saeguard.detectors.spi;

import java.util.Optional;

/**
 * A rule kind: the extension point of the detectors module (docs/architecture.md#conventions). A kind declares its
 * config record ({@link #configType()}), which {@code DetectorDefinitions} binds from the {@code rule:} mapping with
 * Jackson, and builds the {@link TokenRule} that scores tokens at run time. Kinds are discovered with
 * {@link java.util.ServiceLoader} from {@code META-INF/services/io.saeguard.detectors.spi.DetectorKind} and named in
 * YAML by {@link #name()}; the implementation behind a kind stays package-private.
 *
 * <p><b>Reading: the config record is the schema.</b> A kind writes no parser. The {@code rule:} mapping less its
 * {@code kind} key is bound to {@link #configType()}:
 * <ul>
 *   <li>keys are the components' names in snake case ({@code fireAt} → {@code fire_at}) or their
 *       {@code @JsonProperty} names; any other key is rejected, naming the keys allowed there;</li>
 *   <li>a component of type {@code Optional}, {@code OptionalInt}, {@code OptionalDouble} or {@code OptionalLong} may
 *       be left out; any other is required, unless {@code @JsonProperty(defaultValue = "0.5")} gives its default as
 *       YAML text;</li>
 *   <li>scalars are strict: numbers are unquoted and finite, integers whole ({@code 1.5} is not an id), text is
 *       non-empty, an enum is written as its {@code @JsonValue} name;</li>
 *   <li>records and lists of records nest and bind the same way; another shape is declared with Jackson annotations
 *       (dsg's {@code @JsonCreator} from an int lets a feature be a bare id or a mapping);</li>
 *   <li>checks across fields go in the record's compact constructor, which throws {@link InvalidConfigException}
 *       with the key (relative to that record), the problem and the fix; the message then names the file and the
 *       full key path, e.g. {@code rule.features[1].weight};</li>
 *   <li>what needs more than the mapping (a file named relative to the definition, like probe weights) is done by
 *       {@link #resolve} after binding.</li>
 * </ul>
 *
 * <p><b>Writing back.</b> {@code DetectorDefinitions.toYaml} writes the same record with the same Jackson settings:
 * its components in declaration order with snake-case keys, absent {@code Optional}s left out. A record whose YAML
 * differs from that says so with Jackson annotations ({@code @JsonProperty}, {@code @JsonPropertyOrder},
 * {@code @JsonIgnore}, {@code @JsonInclude}, {@code @JsonValue}, {@code @JsonSerialize}) such that the written
 * mapping binds back to an equal config.
 *
 * <p><b>Lifecycle and threading.</b> One instance per class loader, created by the service loader and
 * shared; it must be stateless. {@link #resolve} runs on whichever thread loads definitions. {@link #create} is
 * called once per detector when an engine is built or a detector is replaced; the {@link TokenRule} it returns is
 * then used by exactly one thread (the engine's), so it may keep scratch buffers without locks.
 *
 * @param <C> the config record
 */
public interface DetectorKind<C extends RuleConfig> {
    /** The short name used as YAML {@code rule.kind}, e.g. {@code features}. */
    String name();

    /** The config record's class: what the {@code rule:} mapping binds to (see "Reading" above). */
    Class<C> configType();

    /**
     * Completes a config just bound from YAML with what the mapping alone cannot give, e.g. weights loaded from a
     * file named relative to the definition ({@link RuleContext#existingFile}). Returns the config unchanged by
     * default.
     *
     * @throws DetectorConfigException naming the file, key and fix ({@link RuleContext#error})
     */
    default C resolve(C bound, RuleContext context) throws DetectorConfigException {
        return bound;
    }

    /** Builds the run-time rule from a config that was bound and {@linkplain #resolve resolved}, or built in code. */
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
