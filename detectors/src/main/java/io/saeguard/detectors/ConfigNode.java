package io.saeguard.detectors;

import io.saeguard.detectors.spi.DetectorConfigException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalInt;
import java.util.OptionalLong;
import java.util.TreeSet;

/**
 * A node of a detector YAML document with its place in it, so every accessor can fail with a
 * {@link DetectorConfigException} that names the file, the dotted key path and the fix. Numbers must be
 * YAML numbers (not quoted), finite; integers must be written as integers. Reads the top level of a definition;
 * the {@code rule:} mapping is bound by {@link RuleBinding}. Immutable.
 */
final class ConfigNode {
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory())
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    private final JsonNode node;
    private final String file;
    private final String path;
    private final Path baseDir;

    private ConfigNode(JsonNode node, String file, String path, Path baseDir) {
        this.node = node;
        this.file = file;
        this.path = path;
        this.baseDir = baseDir;
    }

    /**
     * Parses a YAML document whose top level must be a mapping.
     *
     * @param file    names the document in error messages
     * @param baseDir directory that relative file references ({@link #file(String)}) resolve against
     */
    static ConfigNode parseYaml(byte[] yaml, String file, Path baseDir) throws DetectorConfigException {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(baseDir, "baseDir");
        JsonNode root;
        try {
            root = YAML.readTree(yaml);
        } catch (JsonProcessingException e) {
            throw new DetectorConfigException(file, "", "not valid YAML: " + e.getOriginalMessage()
                    + location(e), "correct the YAML syntax (indentation, one key per line, no duplicate keys)", e);
        } catch (IOException e) {
            throw new DetectorConfigException(file, "", "unreadable: " + e.getMessage(), "check the file", e);
        }
        if (root == null || root.isMissingNode() || root.isNull()) {
            throw new DetectorConfigException(file, "", "the document is empty",
                    "write a detector: id, sae, rule, aggregate and policy (see detectors/catalog/README.md)");
        }
        ConfigNode n = new ConfigNode(root, file, "", baseDir);
        if (!root.isObject()) {
            throw n.error("the top level must be a mapping, found " + describe(root),
                    "start the file with 'id: my-detector' and the other top-level keys");
        }
        return n;
    }

    private static String location(JsonProcessingException e) {
        return e.getLocation() == null ? "" : " (line " + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr() + ")";
    }

    /** The file name used in messages. */
    String file() {
        return file;
    }

    /** Dotted path of this node, e.g. {@code rule.features[2]}; empty at the top. */
    String path() {
        return path;
    }

    /** Directory that relative file references resolve against. */
    Path baseDir() {
        return baseDir;
    }

    /** The dotted path of a key under this node. */
    String keyPath(String key) {
        return path.isEmpty() ? key : path + "." + key;
    }

    /** An error about this node. */
    DetectorConfigException error(String problem, String fix) {
        return new DetectorConfigException(file, path, problem, fix);
    }

    /** An error about a key under this node. */
    DetectorConfigException error(String key, String problem, String fix) {
        return new DetectorConfigException(file, keyPath(key), problem, fix);
    }

    /** The YAML node itself. */
    JsonNode json() {
        return node;
    }

    /** Whether this node is a mapping. */
    boolean isMapping() {
        return node.isObject();
    }

    /** Whether the mapping has {@code key} (with any value, {@code null} included). */
    boolean has(String key) {
        return node.has(key);
    }

    /** Rejects keys of this mapping other than {@code allowed}, naming the allowed ones. */
    void allowKeys(String... allowed) throws DetectorConfigException {
        List<String> ok = Arrays.asList(allowed);
        for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!ok.contains(k)) {
                throw unknownKey(file, keyPath(k), k, ok);
            }
        }
    }

    /**
     * An unknown key, naming the keys allowed beside it; the fix is the allowed key it misspells (case, {@code -} for
     * {@code _}, a missing {@code _}), if any.
     */
    static DetectorConfigException unknownKey(String file, String keyPath, String key, Collection<String> allowed) {
        String near = allowed.stream().filter(a -> a.equalsIgnoreCase(key)
                        || a.replace("_", "").equalsIgnoreCase(key.replace("_", "").replace("-", "")))
                .findFirst().map(a -> "write '" + a + "' instead of '" + key + "'").orElse(null);
        return new DetectorConfigException(file, keyPath, "unknown key '" + key + "' (allowed here: " + String.join(", ", new TreeSet<>(allowed)) + ")",
                near != null ? near : "remove it or correct its spelling");
    }

    private JsonNode present(String key, String what, String example) throws DetectorConfigException {
        JsonNode v = node.get(key);
        if (v == null || v.isNull()) {
            throw error(key, "missing " + what, "add '" + key + ": " + example + "'");
        }
        return v;
    }

    /** A required mapping. */
    ConfigNode object(String key) throws DetectorConfigException {
        JsonNode v = present(key, "mapping", "{...}");
        if (!v.isObject()) {
            throw error(key, "expected a mapping, found " + describe(v), "indent the keys of '" + key + "' under it");
        }
        return new ConfigNode(v, file, keyPath(key), baseDir);
    }

    /** An optional mapping. */
    Optional<ConfigNode> optionalObject(String key) throws DetectorConfigException {
        return node.hasNonNull(key) ? Optional.of(object(key)) : Optional.empty();
    }

    /** A required sequence; its elements are nodes of any type. */
    List<ConfigNode> list(String key) throws DetectorConfigException {
        JsonNode v = present(key, "list", "[...]");
        if (!v.isArray()) {
            throw error(key, "expected a list, found " + describe(v), "write the entries as a YAML list, one '- ...' per line");
        }
        List<ConfigNode> out = new ArrayList<>(v.size());
        for (int i = 0; i < v.size(); i++) {
            out.add(new ConfigNode(v.get(i), file, keyPath(key) + "[" + i + "]", baseDir));
        }
        return out;
    }

    /** An optional sequence. */
    Optional<List<ConfigNode>> optionalList(String key) throws DetectorConfigException {
        return node.hasNonNull(key) ? Optional.of(list(key)) : Optional.empty();
    }

    /** A required non-blank string. */
    String string(String key) throws DetectorConfigException {
        JsonNode v = present(key, "text", "...");
        if (!v.isTextual() || v.textValue().isBlank()) {
            throw error(key, "expected non-empty text, found " + describe(v), "write '" + key + ": some-text'");
        }
        return v.textValue();
    }

    /** An optional non-blank string. */
    Optional<String> optionalString(String key) throws DetectorConfigException {
        return node.hasNonNull(key) ? Optional.of(string(key)) : Optional.empty();
    }

    /** A required string that must be one of {@code options} (case-sensitive, lower case in YAML). */
    String choice(String key, String... options) throws DetectorConfigException {
        String s = string(key);
        if (!Arrays.asList(options).contains(s)) {
            String lower = s.toLowerCase(Locale.ROOT);
            String fix = Arrays.asList(options).contains(lower) ? "write '" + lower + "' in lower case"
                    : "write one of: " + String.join(", ", options);
            throw error(key, "'" + s + "' is not one of " + String.join("|", options), fix);
        }
        return s;
    }

    /** A required finite number. */
    double number(String key) throws DetectorConfigException {
        return asNumber(present(key, "number", "1.0"), keyPath(key));
    }

    /** An optional finite number. */
    OptionalDouble optionalNumber(String key) throws DetectorConfigException {
        return node.hasNonNull(key) ? OptionalDouble.of(number(key)) : OptionalDouble.empty();
    }

    /** A required integer in the {@code int} range. */
    int integer(String key) throws DetectorConfigException {
        return asInt(present(key, "integer", "1"), keyPath(key));
    }

    /** An optional integer. */
    OptionalInt optionalInteger(String key) throws DetectorConfigException {
        return node.hasNonNull(key) ? OptionalInt.of(integer(key)) : OptionalInt.empty();
    }

    /** An optional long integer. */
    OptionalLong optionalLong(String key) throws DetectorConfigException {
        if (!node.hasNonNull(key)) {
            return OptionalLong.empty();
        }
        JsonNode v = node.get(key);
        if (!v.isIntegralNumber() || !v.canConvertToLong()) {
            throw error(key, "expected an integer, found " + describe(v), "write a whole number such as 200");
        }
        return OptionalLong.of(v.longValue());
    }

    /** An optional boolean with a default. */
    boolean bool(String key, boolean defaultValue) throws DetectorConfigException {
        if (!node.hasNonNull(key)) {
            return defaultValue;
        }
        JsonNode v = node.get(key);
        if (!v.isBoolean()) {
            throw error(key, "expected true or false, found " + describe(v), "write '" + key + ": true' or '" + key + ": false'");
        }
        return v.booleanValue();
    }

    /** This node as an integer (for list elements). */
    int intValue() throws DetectorConfigException {
        return asInt(node, path);
    }

    private double asNumber(JsonNode v, String where) throws DetectorConfigException {
        if (!v.isNumber()) {
            throw new DetectorConfigException(file, where, "expected a number, found " + describe(v),
                    "write a plain number such as 1.5 (no quotes)");
        }
        double d = v.doubleValue();
        if (!Double.isFinite(d)) {
            throw new DetectorConfigException(file, where, "expected a finite number, found " + d, "write a finite number");
        }
        return d;
    }

    private int asInt(JsonNode v, String where) throws DetectorConfigException {
        if (!v.isIntegralNumber() || !v.canConvertToInt()) {
            throw new DetectorConfigException(file, where, "expected an integer, found " + describe(v),
                    "write a whole number such as 12 (no quotes, no decimal point)");
        }
        return v.intValue();
    }

    /** A YAML value in words for messages: {@code text '5.0'}, {@code int 3}, {@code a mapping}, {@code nothing}. */
    static String describe(JsonNode v) {
        if (v == null || v.isNull()) {
            return "nothing";
        }
        if (v.isTextual()) {
            String t = v.textValue();
            return "text '" + (t.length() > 40 ? t.substring(0, 40) + "…" : t) + "'";
        }
        if (v.isNumber() || v.isBoolean()) {
            return v.getNodeType().name().toLowerCase(Locale.ROOT) + " " + v.asText();
        }
        return v.isObject() ? "a mapping" : v.isArray() ? "a list" : v.getNodeType().name().toLowerCase(Locale.ROOT);
    }

    @Override
    public String toString() {
        return "ConfigNode[" + file + (path.isEmpty() ? "" : ": " + path) + "]";
    }
}
