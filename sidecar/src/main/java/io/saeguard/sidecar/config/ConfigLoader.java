package io.saeguard.sidecar.config;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.saeguard.sae.hub.HubSettings;
import io.saeguard.sae.hub.PretrainedSae;
import io.saeguard.sae.hub.SaePuller;
import io.saeguard.sae.hub.SaeReleases;
import io.saeguard.sae.hub.SaeSourceException;
import io.saeguard.sae.lm.HiddenStateModel;
import io.saeguard.sidecar.config.ConfigFile.AtLeast;
import io.saeguard.sidecar.config.ConfigFile.Describe;
import io.saeguard.sidecar.config.ConfigFile.Fraction;
import io.saeguard.sidecar.config.ConfigFile.Ids;
import io.saeguard.topics.catalog.TopicRole;
import java.io.IOException;
import java.lang.reflect.RecordComponent;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reads the sidecar's YAML config. The file is bound by Jackson into {@link ConfigFile} (the one list of keys), then
 * defaults are applied, paths resolved and {@link SidecarConfig} built. Unknown keys are rejected (naming the key, the
 * file and the keys allowed there), so a typo never silently falls back to a default. Every scalar key can be
 * overridden by an environment variable named {@code SAEGUARD_} + its path in upper case with {@code _} for
 * {@code .}: {@code kafka.bootstrap} → {@code SAEGUARD_KAFKA_BOOTSTRAP}, {@code batching.max_delay_ms} →
 * {@code SAEGUARD_BATCHING_MAX_DELAY_MS} ({@link EnvironmentOverrides}); a bad value there is reported naming the
 * variable. Any string value may also name environment variables, {@code ${VAR}} or {@code ${VAR:-default}} (Kafka
 * client secrets, SAE paths). Relative paths are resolved against the config file's directory.
 *
 * <p>Size: about 600 lines, one class on purpose: it is the single place where the file's keys become the typed
 * config — defaults, path resolution, {@code ${VAR}} substitution, the cross-key checks that Jackson cannot express
 * and their file/key/problem/fix messages — so a new key's rules sit next to the old ones. The keys themselves are
 * listed once, in {@link ConfigFile}.
 */
public final class ConfigLoader {
    private static final Logger LOGGER = LoggerFactory.getLogger(ConfigLoader.class);
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());
    private static final ObjectMapper BINDER = JsonMapper.builder()
            .propertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .addModule(StrictScalars.module())
            .build();
    private static final Pattern VARIABLE = Pattern.compile("\\$\\$\\{|\\$\\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?}");

    /** {@code batching.max_inflight_tokens} defaults to this many times {@code max_batch_tokens}. */
    static final int DEFAULT_INFLIGHT_BATCHES = 8;

    private final String source;
    private final Path baseDir;
    private final ObjectNode root;
    /** The keys set by environment overrides, each with its variable (errors about them name the variable). */
    private final Map<String, String> overridden;
    /** The environment (for {@code http.auth.tokens[].token_env}). */
    private final Map<String, String> env;

    private ConfigLoader(String source, Path baseDir, ObjectNode root, Map<String, String> overridden, Map<String, String> env) {
        this.source = source;
        this.env = env;
        this.baseDir = baseDir;
        this.root = root;
        this.overridden = overridden;
    }

    /** Loads {@code file} (or only defaults and environment when empty) with the process environment. */
    public static SidecarConfig load(Optional<Path> file) throws ConfigException {
        return load(file, System.getenv());
    }

    /** Loads with an explicit environment (tests). */
    public static SidecarConfig load(Optional<Path> file, Map<String, String> env) throws ConfigException {
        JsonNode tree;
        String source;
        Path base;
        if (file.isPresent()) {
            Path f = file.get().toAbsolutePath();
            source = f.toString();
            base = f.getParent();
            if (!Files.isRegularFile(f)) {
                throw new ConfigException(source + ": config file not found");
            }
            try {
                tree = YAML.readTree(f.toFile());
            } catch (IOException e) {
                throw new ConfigException(source + ": not valid YAML: " + e.getMessage(), e);
            }
        } else {
            source = "(no config file)";
            base = Path.of("").toAbsolutePath();
            tree = null;
        }
        if (tree == null || tree.isNull() || tree.isMissingNode()) {
            tree = JsonNodeFactory.instance.objectNode();
        }
        if (!tree.isObject()) {
            throw new ConfigException(source + ": the top level must be a mapping");
        }
        substitute(tree, "", env, source);
        ConfigLoader loader = new ConfigLoader(source, base, (ObjectNode) tree,
                EnvironmentOverrides.apply((ObjectNode) tree, env, ConfigFile.class, source), env);
        EnvironmentOverrides.warnUnknown(env, ConfigFile.class);
        ConfigFile bound = loader.bind();
        loader.checkRanges(bound, ConfigFile.class, "");
        return loader.build(bound);
    }

    /**
     * Replaces {@code ${VAR}} and {@code ${VAR:-default}} in every string value (not in keys) with the environment
     * variable's value, so secrets such as {@code kafka.producer.sasl.jaas.config} need not be in the file;
     * {@code $${} is a literal {@code ${}. A variable that is unset and has no default is an error naming the key.
     */
    private static void substitute(JsonNode node, String path, Map<String, String> env, String source) throws ConfigException {
        if (node instanceof ObjectNode obj) {
            for (Iterator<Map.Entry<String, JsonNode>> it = obj.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                String at = path.isEmpty() ? e.getKey() : path + "." + e.getKey();
                if (e.getValue().isTextual()) {
                    e.setValue(JsonNodeFactory.instance.textNode(expand(e.getValue().asText(), at, env, source)));
                } else {
                    substitute(e.getValue(), at, env, source);
                }
            }
        } else if (node instanceof ArrayNode array) {
            for (int i = 0; i < array.size(); i++) {
                String at = path + "[" + i + "]";
                if (array.get(i).isTextual()) {
                    array.set(i, JsonNodeFactory.instance.textNode(expand(array.get(i).asText(), at, env, source)));
                } else {
                    substitute(array.get(i), at, env, source);
                }
            }
        }
    }

    private static String expand(String value, String path, Map<String, String> env, String source) throws ConfigException {
        Matcher m = VARIABLE.matcher(value);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            String replacement;
            if (m.group(1) == null) {
                replacement = "${";
            } else {
                String v = env.get(m.group(1));
                if (v == null) {
                    if (m.group(2) == null) {
                        throw new ConfigException(source + ": '" + path + "' uses ${" + m.group(1) + "}, but that environment variable "
                                + "is not set (set it, or give a default: ${" + m.group(1) + ":-value})");
                    }
                    v = m.group(3);
                }
                replacement = v;
            }
            m.appendReplacement(out, Matcher.quoteReplacement(replacement));
        }
        m.appendTail(out);
        return out.toString();
    }

    // --- binding and its errors ---

    private ConfigFile bind() throws ConfigException {
        try {
            return BINDER.treeToValue(root, ConfigFile.class);
        } catch (UnrecognizedPropertyException e) {
            List<Object> path = path(e);
            List<Object> parent = path.subList(0, path.size() - 1);
            String allowed = ConfigSchema.resolve(ConfigFile.class, parent).map(ConfigSchema.Slot::raw).filter(Class::isRecord)
                    .map(r -> String.join(", ", new TreeSet<>(ConfigSchema.keys(r)))).orElse("?");
            throw new ConfigException(source + ": unknown key '" + ConfigSchema.render(path) + "' (allowed here: " + allowed
                    + "): remove it or correct its spelling", e);
        } catch (JsonMappingException e) {
            throw typeError(path(e), e);
        } catch (JsonProcessingException e) {
            throw new ConfigException(source + ": " + e.getOriginalMessage(), e);
        }
    }

    private static List<Object> path(JsonMappingException e) {
        List<Object> out = new ArrayList<>();
        for (JsonMappingException.Reference r : e.getPath()) {
            out.add(r.getFieldName() != null ? r.getFieldName() : Integer.valueOf(r.getIndex()));
        }
        return out;
    }

    /** A value of the wrong type at {@code path}: names the key, what it must be, and what was found. */
    private ConfigException typeError(List<Object> path, JsonMappingException cause) {
        Optional<ConfigSchema.Slot> slot = ConfigSchema.resolve(ConfigFile.class, path);
        if (slot.isEmpty()) {
            return new ConfigException(error(ConfigSchema.render(path), "'" + ConfigSchema.render(path) + "': " + cause.getOriginalMessage()),
                    cause);
        }
        ConfigSchema.Slot s = slot.get();
        Optional<Ids> ids = s.component().map(c -> c.getAnnotation(Ids.class));
        if (ids.isPresent() && s.raw() == Integer.class && !path.isEmpty() && path.get(path.size() - 1) instanceof Integer) {
            String list = ConfigSchema.render(path.subList(0, path.size() - 1));
            return new ConfigException(error(list, notAnId(list, found(path), ids.get())), cause);
        }
        String key = ConfigSchema.render(path);
        String foundText = found(path);
        return new ConfigException(error(key, "'" + key + "' must be " + expected(s) + ", found " + (foundText.startsWith("a ") ? foundText
                : "'" + foundText + "'")), cause);
    }

    private static String notAnId(String list, String found, Ids ids) {
        return "'" + list + "' holds '" + found + "', which is not one of the " + ids.value() + " (an integer >= 0)";
    }

    /** What a slot must hold, in words. */
    private static String expected(ConfigSchema.Slot s) {
        Optional<RecordComponent> c = s.component();
        if (s.depth() == 0 && c.isPresent() && c.get().isAnnotationPresent(Describe.class)) {
            return c.get().getAnnotation(Describe.class).value();
        }
        Class<?> raw = s.raw();
        if (raw == Integer.class) {
            return s.depth() == 0 && c.isPresent() && c.get().isAnnotationPresent(AtLeast.class)
                    ? "an integer >= " + c.get().getAnnotation(AtLeast.class).value() : "an integer";
        }
        if (raw == Boolean.class) {
            return "true or false";
        }
        if (raw == Double.class) {
            return c.isPresent() && c.get().isAnnotationPresent(Fraction.class) ? "a number in [0, 1]" : "a number";
        }
        if (raw == String.class) {
            return "a single value";
        }
        if (raw.isRecord()) {
            return "a mapping (keys: " + String.join(", ", ConfigSchema.keys(raw)) + ")";
        }
        if (raw == List.class) {
            if (c.isPresent() && c.get().isAnnotationPresent(Ids.class)) {
                return "a list of " + c.get().getAnnotation(Ids.class).value();
            }
            Class<?> element = ConfigSchema.raw(((java.lang.reflect.ParameterizedType) s.type()).getActualTypeArguments()[0]);
            return element.isRecord() ? "a list of mappings (keys: " + String.join(", ", ConfigSchema.keys(element)) + ")" : "a list";
        }
        return "a mapping";
    }

    /** The value at {@code path} in the tree as text, or "a mapping" / "a list". */
    private String found(List<Object> path) {
        JsonNode n = root;
        for (Object segment : path) {
            n = segment instanceof Integer i ? n.path(i) : n.path((String) segment);
        }
        return n.isObject() ? "a mapping" : n.isArray() ? "a list" : n.asText();
    }

    /**
     * A message about {@code key}: prefixed by the file, or by the environment variable when the value came from an
     * override (the file is not where to fix it).
     */
    private String error(String key, String problem) {
        String variable = overridden.get(key);
        return (variable != null ? "environment variable " + variable : source) + ": " + problem;
    }

    private ConfigException invalid(String key, String problem) {
        return new ConfigException(error(key, problem));
    }

    /** The range checks the records declare ({@link AtLeast}, {@link Fraction}, {@link Ids}), over the bound values. */
    private void checkRanges(Object value, Class<?> type, String prefix) throws ConfigException {
        for (RecordComponent c : type.getRecordComponents()) {
            Object v;
            try {
                v = c.getAccessor().invoke(value);
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException("cannot read " + c, e);
            }
            if (v == null) {
                continue;
            }
            String key = prefix + ConfigSchema.key(c);
            AtLeast atLeast = c.getAnnotation(AtLeast.class);
            if (atLeast != null && (Integer) v < atLeast.value()) {
                throw invalid(key, "'" + key + "' must be an integer >= " + atLeast.value() + ", found '" + v + "'");
            }
            if (c.isAnnotationPresent(Fraction.class) && !((Double) v >= 0 && (Double) v <= 1)) {
                throw invalid(key, "'" + key + "' must be a number in [0, 1], found '" + found(List.of((Object[]) key.split("\\."))) + "'");
            }
            Ids ids = c.getAnnotation(Ids.class);
            if (ids != null && v instanceof List<?> list) {
                checkIds(list, key, ids);
            } else if (ids != null && v instanceof Map<?, ?> map) {
                for (Map.Entry<?, ?> e : map.entrySet()) {
                    if (e.getValue() == null) {
                        throw invalid(key, "'" + key + "." + e.getKey() + "' must be a list of " + ids.value());
                    }
                    checkIds((List<?>) e.getValue(), key + "." + e.getKey(), ids);
                }
            }
            if (c.getType().isRecord()) {
                checkRanges(v, c.getType(), key + ".");
            } else if (v instanceof List<?> list) {
                for (int i = 0; i < list.size(); i++) {
                    if (list.get(i) != null && list.get(i).getClass().isRecord()) {
                        checkRanges(list.get(i), list.get(i).getClass(), key + "[" + i + "].");
                    }
                }
            }
        }
    }

    private void checkIds(List<?> list, String key, Ids ids) throws ConfigException {
        for (Object id : list) {
            if (id == null || (Integer) id < 0) {
                throw invalid(key, notAnId(key, String.valueOf(id), ids));
            }
        }
    }

    // --- defaults, paths and cross-key rules ---

    /**
     * The directory of {@code saes[i]}: its {@code path}, or its {@code release} + {@code sae_id} looked up in SAELens's
     * table and taken from the cache, downloaded from the hub when missing ({@link SaePuller}; HF_ENDPOINT, HF_TOKEN,
     * HF_HUB_OFFLINE and SAEGUARD_CACHE from the same environment as the overrides).
     */
    private Path saeLocation(ConfigFile.Sae s, String where) throws ConfigException {
        Optional<String> path = text(s.path());
        Optional<String> release = text(s.release());
        Optional<String> saeId = text(s.saeId());
        if (path.isPresent() == release.isPresent()) {
            throw new ConfigException(source + ": " + where + (path.isPresent() ? " has both path and release" : " has neither path nor "
                    + "release") + ": give exactly one, 'path' (an SAE directory or .npz file) or 'release' + 'sae_id' (an SAE of "
                    + "SAELens's pretrained_saes.yaml, fetched from the Hugging Face Hub)");
        }
        if (release.isEmpty()) {
            if (saeId.isPresent() || text(s.revision()).isPresent()) {
                throw new ConfigException(source + ": " + where + "." + (saeId.isPresent() ? "sae_id" : "revision") + " goes with 'release', "
                        + "not with 'path': remove it, or replace 'path' with 'release'");
            }
            return resolve(path.get());
        }
        if (saeId.isEmpty()) {
            throw new ConfigException(source + ": " + where + ".sae_id is required with release '" + release.get() + "' (the SAE's id in "
                    + "the release, as SAELens names it, e.g. layer_20/width_16k/canonical)");
        }
        String revision = text(s.revision()).orElse("main");
        try {
            PretrainedSae sae = SaeReleases.bundled().find(release.get(), saeId.get());
            SaePuller.Pulled pulled = new SaePuller(HubSettings.fromEnvironment(env), SaePuller.NONE).pull(sae, revision, false);
            LOGGER.atInfo().addKeyValue("sae", sae.name()).addKeyValue("revision", revision).addKeyValue("commit", pulled.commit())
                    .addKeyValue("directory", pulled.directory()).log(pulled.downloaded() ? "SAE downloaded into the cache" : "SAE from the cache");
            return pulled.directory();
        } catch (SaeSourceException e) {
            throw new ConfigException(source + ": " + where + " (release '" + release.get() + "', sae_id '" + saeId.get() + "'): "
                    + e.getMessage(), e);
        }
    }

    private SidecarConfig build(ConfigFile f) throws ConfigException {
        ConfigFile.Kafka k = f.kafka() != null ? f.kafka() : new ConfigFile.Kafka(null, null, null, null, null, null);
        SidecarConfig.Kafka kafka = new SidecarConfig.Kafka(text(k.bootstrap()), text(k.group()).orElse("saeguard"), text(k.instanceId()),
                props(k.consumer(), "kafka.consumer"), props(k.producer(), "kafka.producer"), props(k.admin(), "kafka.admin"));

        Map<TopicRole, String> topics = new EnumMap<>(TopicRole.class);
        for (Map.Entry<String, String> e : props(f.topics(), "topics").entrySet()) {
            TopicRole role = TopicRole.fromKey(e.getKey()).orElseThrow(() -> new ConfigException(source + ": unknown key 'topics."
                    + e.getKey() + "' (roles: activations, prompts, decisions, alerts, shadow, steering, detectors, reviews, deadletter, judge, judge_verdicts, state)"));
            topics.put(role, e.getValue());
        }

        List<SidecarConfig.SaeEntry> saes = new ArrayList<>();
        Set<String> ids = new HashSet<>();
        List<ConfigFile.Sae> saeList = f.saes() != null ? f.saes() : List.of();
        for (int i = 0; i < saeList.size(); i++) {
            String where = "saes[" + i + "]";
            ConfigFile.Sae s = saeList.get(i);
            if (s == null) {
                throw new ConfigException(source + ": " + where + " must be a mapping with id and path (or release and sae_id)");
            }
            String id = text(s.id()).orElseThrow(() -> new ConfigException(source + ": " + where + ".id is required"));
            if (!ids.add(id)) {
                throw new ConfigException(source + ": SAE id '" + id + "' appears twice");
            }
            saes.add(new SidecarConfig.SaeEntry(id, saeLocation(s, where), text(s.model()), text(s.hook()), or(s.maxActive(), 256),
                    s.specialTokenIds() != null ? new TreeSet<>(s.specialTokenIds()) : Set.of()));
        }

        List<Path> detectors = new ArrayList<>();
        List<String> detectorList = f.detectors() != null ? f.detectors() : List.of();
        for (int i = 0; i < detectorList.size(); i++) {
            if (detectorList.get(i) == null) {
                throw new ConfigException(source + ": 'detectors[" + i + "]' is empty: give a detector YAML file or remove the entry");
            }
            detectors.add(resolve(detectorList.get(i)));
        }

        ConfigFile.Engine e = f.engine() != null ? f.engine() : new ConfigFile.Engine(null, null, null, null, null, null);
        SidecarConfig.Engine engine = new SidecarConfig.Engine(text(e.device()).orElse("auto"),
                or(e.threads(), Runtime.getRuntime().availableProcessors()), text(e.djlCache()).map(this::resolve), or(e.gpuF16(), false),
                or(e.cpuBf16(), false), or(e.gpuBf16(), false));
        if (engine.gpuF16() && engine.gpuBf16()) {
            throw invalid("engine.gpu_f16", "'engine.gpu_f16' and 'engine.gpu_bf16' exclude each other; set one");
        }

        ConfigFile.Batching b = f.batching() != null ? f.batching() : new ConfigFile.Batching(null, null, null, null, null, null, null);
        int maxBatch = or(b.maxBatchTokens(), 512);
        // Kafka is the buffer: the sidecar holds only enough to keep the engine fed (8 batches by default), which bounds
        // the activations it holds (16384 tokens, the old default, are 537 MB of F32 at d_in 8192). See bench/README.md,
        // 2026-11-23, for what it changed in the benchmark and how partitions share an overload.
        int maxInflight = or(b.maxInflightTokens(), Math.multiplyExact(DEFAULT_INFLIGHT_BATCHES, maxBatch));
        int resume = or(b.resumeInflightTokens(), maxInflight / 2);
        if (resume >= maxInflight) {
            throw invalid("batching.resume_inflight_tokens", "batching.resume_inflight_tokens (" + resume + ") must be below max_inflight_tokens ("
                    + maxInflight + ")");
        }
        SidecarConfig.Batching batching = new SidecarConfig.Batching(maxBatch, Duration.ofMillis(or(b.maxDelayMs(), 5)), maxInflight, resume,
                or(b.maxRecordTokens(), 8192), or(b.decodeThreads(), SidecarConfig.Batching.defaultDecodeThreads()), or(b.flushOnIdle(), true));

        String deliveryText = text(f.delivery()).orElse("at-least-once");
        SidecarConfig.Delivery delivery = switch (deliveryText) {
            case "at-least-once" -> SidecarConfig.Delivery.AT_LEAST_ONCE;
            case "exactly-once" -> SidecarConfig.Delivery.EXACTLY_ONCE;
            default -> throw invalid("delivery", "delivery must be at-least-once or exactly-once, found '" + deliveryText + "'");
        };

        SidecarConfig.Http http = http(f.http() != null ? f.http() : new ConfigFile.Http(null, null, null, null));
        ConfigFile.State st = f.state() != null ? f.state() : new ConfigFile.State(null, null);
        SidecarConfig.State state = new SidecarConfig.State(Duration.ofMillis(or(st.requestTtlMs(), 600_000)), or(st.maxRequests(), 100_000));
        Duration drain = Duration.ofMillis(f.shutdown() != null ? or(f.shutdown().drainTimeoutMs(), 15_000) : 15_000);
        return new SidecarConfig(kafka, topics, saes, detectors, engine, batching, delivery, http, state, drain, metrics(f.metrics()),
                prompts(f.prompts()), Boolean.TRUE.equals(f.allowUnverifiedDetectors()), Boolean.TRUE.equals(f.judgeCascade()));
    }

    /** Shortest token accepted: 128 bits of hex. A placeholder such as {@code REPLACE_ME} is refused by it. */
    static final int MIN_TOKEN_CHARS = 32;

    /**
     * {@code http}: without tokens (and without {@code auth.mode: none}) the API binds the loopback address only; a
     * non-loopback {@code host} then is an error naming both ways out.
     */
    private SidecarConfig.Http http(ConfigFile.Http h) throws ConfigException {
        ConfigFile.Auth a = h.auth() != null ? h.auth() : new ConfigFile.Auth(null, null, null);
        String modeText = text(a.mode()).orElse("tokens");
        SidecarConfig.AuthMode mode = switch (modeText) {
            case "tokens" -> SidecarConfig.AuthMode.TOKENS;
            case "none" -> SidecarConfig.AuthMode.NONE;
            default -> throw invalid("http.auth.mode", "'http.auth.mode' must be tokens or none, found '" + modeText + "'");
        };
        String metricsText = text(a.metrics()).orElse("read");
        boolean metricsOpen = switch (metricsText) {
            case "open" -> true;
            case "read" -> false;
            default -> throw invalid("http.auth.metrics", "'http.auth.metrics' must be open (no token) or read (a token with scope "
                    + "read), found '" + metricsText + "'");
        };
        List<SidecarConfig.Token> tokens = new ArrayList<>();
        List<ConfigFile.Token> given = a.tokens() != null ? a.tokens() : List.of();
        Set<String> names = new HashSet<>();
        for (int i = 0; i < given.size(); i++) {
            tokens.add(token(given.get(i), "http.auth.tokens[" + i + "]", names));
        }
        if (mode == SidecarConfig.AuthMode.NONE && !tokens.isEmpty()) {
            throw invalid("http.auth.mode", "'http.auth.mode' is none but 'http.auth.tokens' lists " + tokens.size()
                    + " token(s): remove the tokens, or set mode: tokens to require them");
        }
        Optional<String> host = text(h.host());
        if (mode == SidecarConfig.AuthMode.TOKENS && tokens.isEmpty() && host.isPresent() && !isLoopback(host.get())) {
            throw invalid("http.host", "'http.host' is " + host.get() + " but 'http.auth.tokens' is empty, so anyone who reaches that "
                    + "address could replace detectors and read alerts: add tokens (http.auth.tokens), bind 127.0.0.1, or set "
                    + "'http.auth.mode: none' to serve without authentication on purpose");
        }
        SidecarConfig.Auth auth = new SidecarConfig.Auth(mode, metricsOpen, tokens);
        String defaultHost = mode == SidecarConfig.AuthMode.TOKENS && tokens.isEmpty() ? "127.0.0.1" : "0.0.0.0";
        Optional<SidecarConfig.Tls> tls = Optional.empty();
        if (h.tls() != null) {
            ConfigFile.Tls t = h.tls();
            Path cert = text(t.cert()).map(this::resolve).orElseThrow(() -> invalid("http.tls.cert",
                    "'http.tls.cert' is required with http.tls: the server's certificate chain (PEM)"));
            Path key = text(t.key()).map(this::resolve).orElseThrow(() -> invalid("http.tls.key",
                    "'http.tls.key' is required with http.tls: the server's private key (PEM, PKCS#8 or PKCS#1)"));
            Optional<Path> clientCa = text(t.clientCa()).map(this::resolve);
            for (Map.Entry<String, Path> e : Map.of("http.tls.cert", cert, "http.tls.key", key).entrySet()) {
                if (!Files.isReadable(e.getValue())) {
                    throw invalid(e.getKey(), "'" + e.getKey() + "' names " + e.getValue() + ", which is not a readable file");
                }
            }
            if (clientCa.isPresent() && !Files.isReadable(clientCa.get())) {
                throw invalid("http.tls.client_ca", "'http.tls.client_ca' names " + clientCa.get() + ", which is not a readable file");
            }
            tls = Optional.of(new SidecarConfig.Tls(cert, key, clientCa));
        }
        return new SidecarConfig.Http(host.orElse(defaultHost), or(h.port(), 8080), auth, tls);
    }

    private SidecarConfig.Token token(ConfigFile.Token t, String where, Set<String> names) throws ConfigException {
        if (t == null) {
            throw invalid(where, "'" + where + "' must be a mapping with name, token_env or token_file, and scopes");
        }
        String name = text(t.name()).orElseThrow(() -> invalid(where + ".name", "'" + where + ".name' is required (who holds the token)"));
        if (!names.add(name)) {
            throw invalid(where + ".name", "token name '" + name + "' appears twice in 'http.auth.tokens': give each token its own name");
        }
        Optional<String> var = text(t.tokenEnv());
        Optional<String> file = text(t.tokenFile());
        if (var.isPresent() == file.isPresent()) {
            throw invalid(where, "'" + where + "' (" + name + ") must give exactly one of token_env (an environment variable) or "
                    + "token_file (a file, e.g. a mounted Secret) holding the token");
        }
        String secret;
        if (var.isPresent()) {
            secret = env.get(var.get());
            if (secret == null) {
                throw invalid(where + ".token_env", "'" + where + ".token_env' names " + var.get() + ", which is not set: set it to "
                        + "the token");
            }
        } else {
            Path f = resolve(file.get());
            try {
                secret = Files.readString(f);
            } catch (IOException | RuntimeException e) {
                throw invalid(where + ".token_file", "'" + where + ".token_file' names " + f + ", which cannot be read ("
                        + e.getClass().getSimpleName() + "): mount or create it");
            }
        }
        secret = secret.strip();
        if (secret.length() < MIN_TOKEN_CHARS || secret.chars().anyMatch(Character::isWhitespace)) {
            throw invalid(where, "token '" + name + "' is shorter than " + MIN_TOKEN_CHARS + " characters or holds whitespace (a "
                    + "placeholder?): generate one with 'openssl rand -hex 32'");
        }
        List<String> scopeNames = t.scopes() != null ? t.scopes() : List.of();
        if (scopeNames.isEmpty()) {
            throw invalid(where + ".scopes", "'" + where + ".scopes' is required: a list of read, admin, review");
        }
        Set<SidecarConfig.Scope> scopes = java.util.EnumSet.noneOf(SidecarConfig.Scope.class);
        for (String s : scopeNames) {
            SidecarConfig.Scope scope = java.util.Arrays.stream(SidecarConfig.Scope.values()).filter(x -> x.key().equals(s)).findFirst()
                    .orElseThrow(() -> invalid(where + ".scopes", "'" + where + ".scopes' holds '" + s + "': scopes are read, admin, review"));
            scopes.add(scope);
        }
        return new SidecarConfig.Token(name, sha256(secret), scopes);
    }

    static byte[] sha256(String secret) {
        try {
            return java.security.MessageDigest.getInstance("SHA-256").digest(secret.getBytes(java.nio.charset.StandardCharsets.UTF_8));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JRE", e);
        }
    }

    private static boolean isLoopback(String host) {
        return host.equals("localhost") || host.equals("::1") || host.equals("[::1]") || host.startsWith("127.");
    }

    private Optional<SidecarConfig.Prompts> prompts(ConfigFile.Prompts p) throws ConfigException {
        if (p == null) {
            return Optional.empty();
        }
        String model = text(p.model()).orElseThrow(() -> invalid("prompts.model",
                "'prompts.model' is required: builtin:all-minilm-l6-v2, a .onnx file or a TorchScript .pt file"));
        boolean builtin = model.equals(HiddenStateModel.BUILTIN_MINILM);
        if (builtin && !HiddenStateModel.builtinAvailable()) {
            throw invalid("prompts.model", "prompts.model: " + HiddenStateModel.builtinAbsent());
        }
        if (!builtin) {
            if (model.startsWith("builtin:")) {
                throw invalid("prompts.model", "unknown built-in prompt model '" + model + "' (available: builtin:all-minilm-l6-v2)");
            }
            model = resolve(model).toString();
        }
        Optional<Path> tokenizer = text(p.tokenizer()).map(this::resolve);
        if (!builtin && tokenizer.isEmpty()) {
            throw new ConfigException(source + ": 'prompts.tokenizer' is required for model " + model + " (its tokenizer.json)");
        }
        Optional<String> name = text(p.modelName());
        Optional<String> hook = text(p.hook());
        if (!builtin && (name.isEmpty() || hook.isEmpty())) {
            throw new ConfigException(source + ": 'prompts.model_name' and 'prompts.hook' are required for model " + model
                    + " (they route its hidden states to an SAE)");
        }
        return Optional.of(new SidecarConfig.Prompts(model, tokenizer, name.orElse("all-minilm-l6-v2"), hook.orElse("blocks.5.hook_resid_post"),
                or(p.maxTokens(), 256), or(p.maxBatchPrompts(), 16), or(p.excerpts(), true), or(p.excerptContextChars(), 60)));
    }

    private SidecarConfig.MetricsSettings metrics(ConfigFile.Metrics m) throws ConfigException {
        SidecarConfig.MetricsSettings d = SidecarConfig.MetricsSettings.defaults();
        if (m == null) {
            return d;
        }
        Map<String, Set<Integer>> watch = new LinkedHashMap<>();
        if (m.watch() != null) {
            m.watch().forEach((sae, features) -> watch.put(sae, new TreeSet<>(features)));
        }
        double fraction = or(m.fullEncodeFraction(), d.fullEncodeFraction());
        // Unset, the maximum is the default's or the floor, whichever is larger; set below the floor it is an error.
        double maxFraction = or(m.fullEncodeMaxFraction(), Math.max(fraction, d.fullEncodeMaxFraction()));
        if (maxFraction < fraction) {
            throw invalid("metrics.full_encode_max_fraction", "metrics.full_encode_max_fraction (" + maxFraction
                    + ") must be at least metrics.full_encode_fraction (" + fraction + "); set them equal for a fixed sample");
        }
        String precisionText = text(m.samplePrecision()).orElse(d.samplePrecision().wireName());
        SidecarConfig.MetricsSettings.SamplePrecision precision = switch (precisionText) {
            case "auto" -> SidecarConfig.MetricsSettings.SamplePrecision.AUTO;
            case "f32" -> SidecarConfig.MetricsSettings.SamplePrecision.F32;
            case "bf16" -> SidecarConfig.MetricsSettings.SamplePrecision.BF16;
            default -> throw invalid("metrics.sample_precision", "metrics.sample_precision must be auto, f32 or bf16, found '"
                    + precisionText + "'");
        };
        return new SidecarConfig.MetricsSettings(or(m.topFeatures(), d.topFeatures()), watch,
                m.fireRateHalfLifeTokens() != null ? m.fireRateHalfLifeTokens() : d.halfLifeTokens(),
                m.deadWindowTokens() != null ? m.deadWindowTokens() : d.deadWindowTokens(), or(m.fvuSampleRate(), d.fvuSampleRate()),
                m.calibrationTokens() != null ? m.calibrationTokens() : d.calibrationTokens(), fraction, maxFraction, precision);
    }

    /** A path from the file: {@code ~/} is the user's home directory; other relative paths resolve against the file's directory. */
    private Path resolve(String path) {
        if (path.equals("~") || path.startsWith("~/")) {
            return Path.of(System.getProperty("user.home")).resolve(path.substring(path.equals("~") ? 1 : 2)).normalize();
        }
        return baseDir.resolve(path).normalize();
    }

    /** A mapping of names to values (Kafka client properties, topics); a name without a value is an error naming it. */
    private Map<String, String> props(Map<String, String> values, String key) throws ConfigException {
        Map<String, String> out = new LinkedHashMap<>();
        if (values == null) {
            return out;
        }
        for (Map.Entry<String, String> e : values.entrySet()) {
            if (e.getValue() == null) {
                throw new ConfigException(source + ": '" + key + "." + e.getKey() + "' has no value: give it one or remove it");
            }
            out.put(e.getKey(), e.getValue());
        }
        return out;
    }

    /** A text value; blank counts as absent (an override such as {@code SAEGUARD_KAFKA_BOOTSTRAP=} restores the default). */
    private static Optional<String> text(String value) {
        return value == null || value.isBlank() ? Optional.empty() : Optional.of(value);
    }

    private static <T> T or(T value, T defaultValue) {
        return value != null ? value : defaultValue;
    }
}
