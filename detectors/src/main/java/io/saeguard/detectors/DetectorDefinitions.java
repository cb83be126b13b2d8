package io.saeguard.detectors;

import io.saeguard.detectors.spi.DetectorConfigException;
import io.saeguard.detectors.spi.Aggregation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLGenerator;
import io.saeguard.detectors.spi.Aggregation.Kind;
import io.saeguard.detectors.Policy.Band;
import io.saeguard.detectors.Policy.FailMode;
import io.saeguard.detectors.spi.DetectorKind;
import io.saeguard.detectors.spi.RuleConfig;
import io.saeguard.detectors.spi.TokenRule;
import io.saeguard.topics.events.Action;
import io.saeguard.topics.events.Tier;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalInt;
import java.util.OptionalLong;

/**
 * Loads, validates and writes detector definitions: one YAML file per detector (docs/architecture.md#detectors). Unknown
 * keys are rejected at every level, and every error is a {@link DetectorConfigException} naming the
 * file, the key and the fix. The {@code rule:} mapping is bound by Jackson to its kind's config record
 * ({@link DetectorKind#configType()}, {@link RuleBinding}). The format, with every top-level key:
 * <pre>{@code
 * id: toxicity                    # unique; [A-Za-z0-9][A-Za-z0-9._-]*, at most 64 characters
 * sae: gemma-2b-l20-16k           # an SAE id from the sidecar config
 * description: free text          # optional
 * mode: live                      # live | shadow (default live): a shadow detector's verdicts change no decision or alert
 * rule:                           # kind: features | probe | raw-probe | dsg (plug-ins may add more)
 *   kind: features
 *   match: any
 *   features:
 *     - id: 6631
 *       threshold: 5.0
 *       label: profanity and slurs
 * aggregate: max                  # token | max | mean | count | fraction | window (default max; not for dsg)
 * window: 32                      # with aggregate window (required) or fraction (optional)
 * special_tokens:                 # optional; default {ids: [], skip_first: true}
 *   ids: [0, 1, 2]
 *   skip_first: true
 * policy:
 *   alert_at: 1.0                 # optional: no alerts without it
 *   vector_feature: 6631          # optional: direction for steer/clamp (required for probes)
 *   fail: open                    # open | closed (default open): the verdict on an error or a missed deadline
 *   deadline_ms: 50               # optional: the most ms from a chunk's production to the verdict (DetectorEngine, "Failures")
 *   bands:                        # sorted by min, ascending
 *     - {min: 1.0, action: flag}
 *     - {min: 1.5, action: steer, tier: medium, coefficient: -8.0}
 *     - {min: 2.0, action: clamp, value: -0.5}
 *     - {min: 2.5, action: escalate, judge_timeout_ms: 2000, fallback: block}  # flag now, the judge decides next
 *     - {min: 3.0, action: block}
 * }</pre>
 * See {@link Aggregation}, {@link Policy} and {@link SpecialTokens} for the semantics.
 */
public final class DetectorDefinitions {
    private static final ObjectMapper YAML_OUT = new ObjectMapper(new YAMLFactory()
            .disable(YAMLGenerator.Feature.WRITE_DOC_START_MARKER)
            .enable(YAMLGenerator.Feature.MINIMIZE_QUOTES)
            .enable(YAMLGenerator.Feature.INDENT_ARRAYS_WITH_INDICATOR));
    private static final String ESCALATE = "escalate";
    private static final String[] BAND_ACTIONS = {"allow", "flag", "steer", "clamp", "block", ESCALATE};
    private static final String[] TIERS = {"low", "medium", "high"};

    private DetectorDefinitions() {}

    /** Loads one definition file; relative file references in it (probe weights) resolve against its directory. */
    public static DetectorDefinition load(Path yamlFile) throws DetectorConfigException {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(yamlFile);
        } catch (IOException e) {
            throw new DetectorConfigException(yamlFile.toString(), "", "cannot read the file: " + e.getMessage(),
                    "check the path and its permissions", e);
        }
        Path dir = yamlFile.toAbsolutePath().getParent();
        return parse(bytes, yamlFile.toString(), dir == null ? Path.of("") : dir);
    }

    /**
     * Parses one definition; relative file references resolve against the working directory.
     *
     * @param sourceName names the definition in error messages (a file name, or e.g. {@code PUT /v1/detectors/toxicity})
     */
    public static DetectorDefinition parse(byte[] yaml, String sourceName) throws DetectorConfigException {
        return parse(yaml, sourceName, Path.of(""));
    }

    /** Parses one definition; relative file references resolve against {@code baseDir}. */
    public static DetectorDefinition parse(byte[] yaml, String sourceName, Path baseDir) throws DetectorConfigException {
        ConfigNode root = ConfigNode.parseYaml(yaml, sourceName, baseDir);
        root.allowKeys("id", "sae", "description", "status", "mode", "rule", "aggregate", "window", "special_tokens", "policy");
        String id = root.string("id");
        if (!DetectorDefinition.ID.matcher(id).matches()) {
            throw root.error("id", "'" + id + "' is not a valid detector id",
                    "use letters, digits, '.', '_' and '-' only, starting with a letter or digit, at most 64 characters");
        }
        String sae = root.string("sae");
        Optional<String> description = root.optionalString("description");
        DetectorDefinition.Status status = root.has("status")
                ? DetectorDefinition.Status.valueOf(root.choice("status", "verified", "unverified").toUpperCase(Locale.ROOT))
                : DetectorDefinition.Status.VERIFIED;
        DetectorDefinition.Mode mode = root.has("mode")
                ? DetectorDefinition.Mode.valueOf(root.choice("mode", "live", "shadow").toUpperCase(Locale.ROOT))
                : DetectorDefinition.Mode.LIVE;

        ConfigNode ruleNode = root.object("rule");
        String kindName = ruleNode.string("kind");
        DetectorKind<?> kind = DetectorKinds.byName(kindName).orElseThrow(() -> ruleNode.error("kind",
                "unknown rule kind '" + kindName + "'", "write one of: " + DetectorKinds.names()));
        RuleConfig rule = RuleBinding.read(kind, ruleNode);

        Aggregation aggregate = aggregation(root, rule, kindName);
        SpecialTokens special = specialTokens(root);
        Policy policy = policy(root.object("policy"));
        DetectorDefinition definition = new DetectorDefinition(id, sae, description, rule, aggregate, special, policy, status, mode);
        Optional<String> problem = interventionProblem(definition, DetectorKinds.create(rule));
        if (problem.isPresent()) {
            throw root.error("policy.vector_feature", problem.get(),
                    "add 'vector_feature: N' under 'policy' (the SAE feature whose decoder row to steer or clamp along)");
        }
        return definition;
    }

    private static Aggregation aggregation(ConfigNode root, RuleConfig rule, String kindName) throws DetectorConfigException {
        Optional<Aggregation> own = DetectorKinds.aggregation(rule);
        if (own.isPresent()) {
            for (String key : new String[] {"aggregate", "window"}) {
                if (root.has(key)) {
                    throw root.error(key, "rule kind '" + kindName + "' computes its own aggregation, so '" + key + "' is not allowed here",
                            "remove top-level '" + key + "'" + (kindName.equals("dsg") ? "; for the windowed variant write 'window: W' under 'rule'" : ""));
                }
            }
            return own.get();
        }
        Kind kind = Kind.MAX;
        if (root.has("aggregate")) {
            String name = root.choice("aggregate", "token", "max", "mean", "count", "fraction", "window");
            kind = Kind.fromYamlName(name).orElseThrow();
        }
        OptionalInt window = root.optionalInteger("window");
        if (window.isPresent() && window.getAsInt() < 1) {
            throw root.error("window", "must be >= 1, found " + window.getAsInt(), "write a window length in tokens such as 32");
        }
        if (kind == Kind.WINDOW && window.isEmpty()) {
            throw root.error("window", "'aggregate: window' needs a window length", "add 'window: 32' (tokens) next to 'aggregate'");
        }
        if (window.isPresent() && kind != Kind.WINDOW && kind != Kind.FRACTION) {
            throw root.error("window", "'aggregate: " + kind.yamlName() + "' takes no window",
                    "remove 'window', or use 'aggregate: window' (max over the last W tokens) or 'aggregate: fraction' (windowed rate)");
        }
        return new Aggregation(kind, window);
    }

    private static SpecialTokens specialTokens(ConfigNode root) throws DetectorConfigException {
        Optional<ConfigNode> node = root.optionalObject("special_tokens");
        if (node.isEmpty()) {
            return SpecialTokens.DEFAULT;
        }
        ConfigNode n = node.get();
        n.allowKeys("ids", "skip_first");
        List<Integer> ids = new ArrayList<>();
        for (ConfigNode e : n.optionalList("ids").orElse(List.of())) {
            int id = e.intValue();
            if (id < 0) {
                throw e.error("token ids are >= 0, found " + id, "use the tokenizer's ids, e.g. 0 for <pad>, 1 for <eos>, 2 for <bos> in Gemma");
            }
            ids.add(id);
        }
        return new SpecialTokens(ids, n.bool("skip_first", true));
    }

    private static Policy policy(ConfigNode p) throws DetectorConfigException {
        p.allowKeys("alert_at", "bands", "vector_feature", "fail", "deadline_ms");
        OptionalDouble alertAt = p.optionalNumber("alert_at");
        OptionalInt vectorFeature = p.optionalInteger("vector_feature");
        if (vectorFeature.isPresent() && vectorFeature.getAsInt() < 0) {
            throw p.error("vector_feature", "feature ids are >= 0, found " + vectorFeature.getAsInt(), "use the feature's index in the SAE dictionary");
        }
        FailMode fail = p.has("fail") ? FailMode.valueOf(p.choice("fail", "open", "closed").toUpperCase(Locale.ROOT)) : FailMode.OPEN;
        OptionalLong deadline = p.optionalLong("deadline_ms");
        if (deadline.isPresent() && deadline.getAsLong() <= 0) {
            throw p.error("deadline_ms", "must be > 0, found " + deadline.getAsLong(), "write a positive number of milliseconds, or remove it");
        }
        List<Band> bands = new ArrayList<>();
        for (ConfigNode b : p.optionalList("bands").orElse(List.of())) {
            if (!b.isMapping()) {
                throw b.error("expected a mapping with 'min' and 'action'", "write '- min: 1.0' and, indented below it, 'action: flag'");
            }
            b.allowKeys("min", "action", "tier", "coefficient", "value", "judge_timeout_ms", "fallback");
            double min = b.number("min");
            String actionName = b.choice("action", BAND_ACTIONS);
            Optional<Policy.Escalation> escalation = escalation(b, actionName);
            Action action = escalation.isPresent() ? Action.FLAG : Action.fromWireName(actionName).orElseThrow();
            Optional<Tier> tier = Optional.empty();
            OptionalDouble coefficient = b.optionalNumber("coefficient");
            OptionalDouble value = b.optionalNumber("value");
            if (action == Action.STEER) {
                if (!b.has("tier")) {
                    throw b.error("tier", "a steer band needs a tier", "add 'tier: low' (only where the feature fires), 'medium' (rest of the request once triggered) or 'high' (always on)");
                }
                tier = Tier.fromWireName(b.choice("tier", TIERS));
                if (coefficient.isEmpty()) {
                    throw b.error("coefficient", "a steer band needs a coefficient (the applier adds coefficient·v)",
                            "add 'coefficient: -8.0' (negative suppresses the feature)");
                }
            } else {
                for (String key : new String[] {"tier", "coefficient"}) {
                    if (b.has(key)) {
                        throw b.error(key, "'" + key + "' is only used by steer bands", "remove it, or set 'action: steer'");
                    }
                }
            }
            if (action == Action.CLAMP) {
                if (value.isEmpty()) {
                    throw b.error("value", "a clamp band needs a value (a multiple of the chunk's mean activation norm)",
                            "add 'value: -0.5' (the component along the direction is set to value × mean activation norm)");
                }
            } else if (value.isPresent()) {
                throw b.error("value", "'value' is only used by clamp bands", "remove it, or set 'action: clamp'");
            }
            if (!bands.isEmpty() && !(min > bands.get(bands.size() - 1).min())) {
                throw b.error("min", min + " is not above the previous band's min " + bands.get(bands.size() - 1).min(),
                        "order the bands by min ascending, without duplicates");
            }
            bands.add(new Band(min, action, tier, coefficient, value, escalation));
        }
        return new Policy(alertAt, bands, vectorFeature, fail, deadline);
    }

    /** {@code action: escalate} needs {@code judge_timeout_ms} and {@code fallback}; other actions take neither. */
    private static Optional<Policy.Escalation> escalation(ConfigNode b, String action) throws DetectorConfigException {
        if (!action.equals(ESCALATE)) {
            for (String key : new String[] {"judge_timeout_ms", "fallback"}) {
                if (b.has(key)) {
                    throw b.error(key, "'" + key + "' is only used by escalate bands", "remove it, or set 'action: escalate'");
                }
            }
            return Optional.empty();
        }
        if (!b.has("judge_timeout_ms")) {
            throw b.error("judge_timeout_ms", "an escalate band needs judge_timeout_ms (how long to wait for the judge's verdict)",
                    "add 'judge_timeout_ms: 2000'");
        }
        long timeout = b.optionalLong("judge_timeout_ms").orElseThrow();
        if (timeout <= 0) {
            throw b.error("judge_timeout_ms", "must be > 0, found " + timeout, "write a positive number of milliseconds");
        }
        if (!b.has("fallback")) {
            throw b.error("fallback", "an escalate band needs a fallback (the decision when the judge does not answer in time)",
                    "add 'fallback: block' (or allow, flag)");
        }
        Action fallback = Action.fromWireName(b.choice("fallback", "allow", "flag", "block")).orElseThrow();
        return Optional.of(new Policy.Escalation(timeout, fallback));
    }

    /** Why a definition's steer/clamp bands have no direction, if they have none. */
    static Optional<String> interventionProblem(DetectorDefinition d, TokenRule rule) {
        if (d.policy().intervenes() && d.policy().vectorFeature().isEmpty() && rule.namedFeatures().length == 0) {
            return Optional.of("rule kind '" + d.rule().kind() + "' names no SAE feature, so its steer/clamp bands have no direction");
        }
        return Optional.empty();
    }

    /**
     * Loads several files; ids must be unique across them.
     *
     * @throws DetectorConfigException for the first invalid file, or naming both files of a duplicate id
     */
    public static List<DetectorDefinition> loadAll(List<Path> files) throws DetectorConfigException {
        List<DetectorDefinition> out = new ArrayList<>();
        Map<String, Path> seen = new HashMap<>();
        for (Path f : files) {
            DetectorDefinition d = load(f);
            Path previous = seen.putIfAbsent(d.id(), f);
            if (previous != null) {
                throw new DetectorConfigException(f.toString(), "id", "detector id '" + d.id() + "' is already defined in " + previous,
                        "give each detector a unique id");
            }
            out.add(d);
        }
        return out;
    }

    /**
     * Writes a definition as YAML that {@link #parse} reads back to an equal definition (probe weight
     * files are referenced by the path stored in the config, not rewritten).
     */
    public static String toYaml(DetectorDefinition d) {
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("id", d.id());
        root.put("sae", d.sae());
        d.description().ifPresent(s -> root.put("description", s));
        if (d.status() != DetectorDefinition.Status.VERIFIED) {
            root.put("status", d.status().yamlName());
        }
        if (d.mode() != DetectorDefinition.Mode.LIVE) {
            root.put("mode", d.mode().yamlName());
        }
        Map<String, Object> rule = new LinkedHashMap<>();
        rule.put("kind", d.rule().kind());
        rule.putAll(DetectorKinds.write(d.rule()));
        root.put("rule", rule);
        if (DetectorKinds.aggregation(d.rule()).isEmpty()) {
            root.put("aggregate", d.aggregate().kind().yamlName());
            d.aggregate().window().ifPresent(w -> root.put("window", w));
        }
        if (!d.specialTokens().equals(SpecialTokens.DEFAULT)) {
            Map<String, Object> special = new LinkedHashMap<>();
            special.put("ids", d.specialTokens().ids());
            special.put("skip_first", d.specialTokens().skipFirst());
            root.put("special_tokens", special);
        }
        Map<String, Object> policy = new LinkedHashMap<>();
        Policy p = d.policy();
        p.alertAt().ifPresent(a -> policy.put("alert_at", a));
        p.vectorFeature().ifPresent(v -> policy.put("vector_feature", v));
        policy.put("fail", p.fail().name().toLowerCase(Locale.ROOT));
        p.deadlineMs().ifPresent(ms -> policy.put("deadline_ms", ms));
        List<Object> bands = new ArrayList<>();
        for (Band b : p.bands()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("min", b.min());
            m.put("action", b.escalation().isPresent() ? ESCALATE : b.action().wireName());
            b.tier().ifPresent(t -> m.put("tier", t.wireName()));
            b.coefficient().ifPresent(c -> m.put("coefficient", c));
            b.value().ifPresent(v -> m.put("value", v));
            b.escalation().ifPresent(e -> {
                m.put("judge_timeout_ms", e.timeoutMs());
                m.put("fallback", e.fallback().wireName());
            });
            bands.add(m);
        }
        policy.put("bands", bands);
        root.put("policy", policy);
        try {
            return YAML_OUT.writeValueAsString(root);
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
    }
}
