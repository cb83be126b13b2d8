package io.saeguard.topics.catalog;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.EnumMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * The topic catalogue parsed from {@code topics.yaml}. Every role of {@link TopicRole} must appear
 * exactly once; unknown keys are rejected so a typo cannot silently fall back to a default.
 */
public final class TopicCatalog {
    /** Where the bundled copy of {@code topics/topics.yaml} lives on the classpath. */
    public static final String BUNDLED_RESOURCE = "/io/saeguard/topics/topics.yaml";
    /** Kafka topic configs every entry must state, so nothing important is left to broker defaults. */
    static final Set<String> REQUIRED_CONFIGS = Set.of("cleanup.policy", "retention.ms", "max.message.bytes");
    private static final Set<String> ENTRY_KEYS = Set.of("role", "name", "description", "partitions", "replication", "configs");
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

    private final Map<TopicRole, TopicSpec> topics;

    private TopicCatalog(Map<TopicRole, TopicSpec> topics) {
        this.topics = topics;
    }

    /** The catalogue bundled in the jar (the repository's {@code topics/topics.yaml}). */
    public static TopicCatalog bundled() {
        try (InputStream in = TopicCatalog.class.getResourceAsStream(BUNDLED_RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("bundled topics.yaml missing from the classpath at " + BUNDLED_RESOURCE);
            }
            return parse(in.readAllBytes(), "bundled topics.yaml");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Loads a catalogue file. */
    public static TopicCatalog load(Path file) throws IOException {
        return parse(Files.readAllBytes(file), file.toString());
    }

    /**
     * Parses catalogue YAML.
     *
     * @param source names the file in error messages
     * @throws IllegalArgumentException naming the file, entry and key when the catalogue is invalid
     */
    public static TopicCatalog parse(byte[] yaml, String source) throws IOException {
        JsonNode root = YAML.readTree(yaml);
        if (root == null || !root.isObject() || !root.has("topics") || !root.get("topics").isArray()) {
            throw new IllegalArgumentException(source + ": expected a top-level 'topics:' list");
        }
        for (Iterator<String> it = root.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!k.equals("topics")) {
                throw new IllegalArgumentException(source + ": unknown top-level key '" + k + "' (only 'topics' is allowed)");
            }
        }
        Map<TopicRole, TopicSpec> topics = new EnumMap<>(TopicRole.class);
        int index = 0;
        for (JsonNode entry : root.get("topics")) {
            TopicSpec spec = entry(entry, source + ": topics[" + index + "]");
            if (topics.put(spec.role(), spec) != null) {
                throw new IllegalArgumentException(source + ": role '" + spec.role().key() + "' appears twice");
            }
            index++;
        }
        for (TopicRole role : TopicRole.values()) {
            if (!topics.containsKey(role)) {
                throw new IllegalArgumentException(source + ": no entry for role '" + role.key() + "'");
            }
        }
        int state = topics.get(TopicRole.STATE).partitions();
        for (TopicRole input : new TopicRole[] {TopicRole.ACTIVATIONS, TopicRole.PROMPTS}) {
            if (topics.get(input).partitions() != state) {
                throw new IllegalArgumentException(source + ": role 'state' has " + state + " partitions but role '" + input.key() + "' has "
                        + topics.get(input).partitions() + "; a request's state is kept on the state partition with its input partition's "
                        + "number (docs/architecture.md#request-state), so give them the same count");
            }
        }
        return new TopicCatalog(topics);
    }

    private static TopicSpec entry(JsonNode e, String at) {
        String where = at;
        if (!e.isObject()) {
            throw new IllegalArgumentException(where + ": must be a mapping");
        }
        for (Iterator<String> it = e.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!ENTRY_KEYS.contains(k)) {
                throw new IllegalArgumentException(where + ": unknown key '" + k + "' (allowed: " + String.join(", ", ENTRY_KEYS) + ")");
            }
        }
        String roleKey = text(e, "role", where);
        TopicRole role = TopicRole.fromKey(roleKey).orElseThrow(() -> new IllegalArgumentException(
                at + ": unknown role '" + roleKey + "' (roles: activations, prompts, decisions, alerts, shadow, steering, detectors, reviews, deadletter, judge, judge_verdicts, state)"));
        where = where + " (" + roleKey + ")";
        String name = text(e, "name", where);
        if (!name.matches("[a-zA-Z0-9._-]{1,249}")) {
            throw new IllegalArgumentException(where + ": '" + name + "' is not a legal Kafka topic name");
        }
        int partitions = integer(e, "partitions", where);
        int replication = integer(e, "replication", where);
        if (replication > Short.MAX_VALUE) {
            throw new IllegalArgumentException(where + ": replication " + replication + " is too large");
        }
        Map<String, String> configs = new LinkedHashMap<>();
        JsonNode c = e.get("configs");
        if (c == null || !c.isObject()) {
            throw new IllegalArgumentException(where + ": 'configs' mapping is required");
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = c.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> kv = it.next();
            if (!kv.getValue().isValueNode() || kv.getValue().isNull()) {
                throw new IllegalArgumentException(where + ": config '" + kv.getKey() + "' must be a scalar");
            }
            configs.put(kv.getKey(), kv.getValue().asText());
        }
        for (String required : REQUIRED_CONFIGS) {
            if (!configs.containsKey(required)) {
                throw new IllegalArgumentException(where + ": config '" + required + "' is required");
            }
        }
        String description = e.has("description") ? e.get("description").asText() : "";
        return new TopicSpec(role, name, description, partitions, (short) replication, configs);
    }

    private static String text(JsonNode e, String key, String where) {
        JsonNode n = e.get(key);
        if (n == null || !n.isTextual() || n.textValue().isBlank()) {
            throw new IllegalArgumentException(where + ": '" + key + "' must be a non-empty string");
        }
        return n.textValue();
    }

    private static int integer(JsonNode e, String key, String where) {
        JsonNode n = e.get(key);
        if (n == null || !n.canConvertToInt() || !n.isIntegralNumber() || n.intValue() < 1) {
            throw new IllegalArgumentException(where + ": '" + key + "' must be a positive integer");
        }
        return n.intValue();
    }

    public TopicSpec get(TopicRole role) {
        return topics.get(role);
    }

    /** All topics, in role order. */
    public Collection<TopicSpec> all() {
        return topics.values();
    }

    /** This catalogue with some topics renamed (config overrides), everything else kept. */
    public TopicCatalog withNames(Map<TopicRole, String> names) {
        Map<TopicRole, TopicSpec> copy = new EnumMap<>(topics);
        names.forEach((role, name) -> copy.put(role, copy.get(role).withName(name)));
        return new TopicCatalog(copy);
    }
}
