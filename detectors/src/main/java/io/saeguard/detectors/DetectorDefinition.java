package io.saeguard.detectors;

import io.saeguard.detectors.spi.Aggregation;
import io.saeguard.detectors.spi.RuleConfig;
import java.util.Objects;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * One detector (docs/architecture.md#detectors): an SAE, a rule over its codes (or raw activations), an aggregation over
 * the request, the tokens that never count, and a policy. Parsed from one YAML file by
 * {@link DetectorDefinitions}; written back by {@link DetectorDefinitions#toYaml(DetectorDefinition)}.
 *
 * @param id            unique detector id, {@code [A-Za-z0-9][A-Za-z0-9._-]*} (at most 64 characters), used as a metric label
 * @param sae           the SAE id from the sidecar config whose codes the rule reads
 * @param description   free text for people
 * @param rule          the rule's config record; its {@link RuleConfig#kind()} names the plugin
 * @param aggregate     the aggregation; for rule kinds with their own (dsg) it is the kind's
 * @param specialTokens tokens that never count
 * @param policy        bands, alerting, fail mode
 * @param status        whether its thresholds were measured ({@code status:} in the YAML; absent means verified)
 * @param mode          whether its verdicts decide ({@code mode:} in the YAML; absent means live)
 */
public record DetectorDefinition(String id, String sae, Optional<String> description, RuleConfig rule,
        Aggregation aggregate, SpecialTokens specialTokens, Policy policy, Status status, Mode mode) {

    /**
     * Whether a detector's verdicts count. A {@code shadow} detector is evaluated like any other (same chunks, same
     * request state) but its verdicts never change an action, a decision or an alert: they go to the
     * {@code saeguard.shadow} topic and to metrics with {@code mode="shadow"}, so a new detector or threshold can be
     * watched on production traffic before it decides anything (docs/architecture.md#detectors).
     */
    public enum Mode {
        /** Its verdicts take part in the decision and raise alerts (the default). */
        LIVE,
        /** Its verdicts are published apart and change nothing. */
        SHADOW;

        /** The YAML form and metric label, {@code live} or {@code shadow}. */
        public String yamlName() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    /**
     * Whether a detector's behaviour was measured. A pack whose features or thresholds were never checked on real
     * activations (e.g. cited from a third party for a model nobody here ran) says {@code status: unverified}; the
     * sidecar warns when it loads one and refuses it unless the config sets {@code allow_unverified_detectors: true}.
     */
    public enum Status {
        /** Measured (the default): the pack states how. */
        VERIFIED,
        /** Not measured: thresholds are placeholders. */
        UNVERIFIED;

        /** The YAML form, {@code verified} or {@code unverified}. */
        public String yamlName() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    /** A verified detector. */
    public DetectorDefinition(String id, String sae, Optional<String> description, RuleConfig rule, Aggregation aggregate,
            SpecialTokens specialTokens, Policy policy) {
        this(id, sae, description, rule, aggregate, specialTokens, policy, Status.VERIFIED, Mode.LIVE);
    }

    /** A live detector. */
    public DetectorDefinition(String id, String sae, Optional<String> description, RuleConfig rule, Aggregation aggregate,
            SpecialTokens specialTokens, Policy policy, Status status) {
        this(id, sae, description, rule, aggregate, specialTokens, policy, status, Mode.LIVE);
    }

    /** The id syntax: safe as a file name, a metric label value and a URL path segment. */
    public static final Pattern ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,63}");

    public DetectorDefinition {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(sae, "sae");
        Objects.requireNonNull(description, "description");
        Objects.requireNonNull(rule, "rule");
        Objects.requireNonNull(aggregate, "aggregate");
        Objects.requireNonNull(specialTokens, "specialTokens");
        Objects.requireNonNull(policy, "policy");
        Objects.requireNonNull(status, "status");
        Objects.requireNonNull(mode, "mode");
        if (!ID.matcher(id).matches()) {
            throw new IllegalArgumentException("detector id '" + id + "' must match " + ID.pattern());
        }
        if (sae.isBlank()) {
            throw new IllegalArgumentException("sae must not be blank");
        }
    }

    /** A copy with another policy. */
    public DetectorDefinition withPolicy(Policy replacement) {
        return new DetectorDefinition(id, sae, description, rule, aggregate, specialTokens, replacement, status, mode);
    }

    /** A copy with another id. */
    public DetectorDefinition withId(String replacement) {
        return new DetectorDefinition(replacement, sae, description, rule, aggregate, specialTokens, policy, status, mode);
    }

    /** A copy in another mode. */
    public DetectorDefinition withMode(Mode replacement) {
        return new DetectorDefinition(id, sae, description, rule, aggregate, specialTokens, policy, status, replacement);
    }

    /** Whether this detector runs in shadow mode. */
    public boolean shadow() {
        return mode == Mode.SHADOW;
    }
}
