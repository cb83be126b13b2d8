package io.saeguard.detectors;

import io.saeguard.detectors.spi.DetectorConfigException;
import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.BeanDescription;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JavaType;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MapperFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import com.fasterxml.jackson.databind.introspect.BeanPropertyDefinition;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.datatype.jdk8.Jdk8Module;
import io.saeguard.detectors.spi.DetectorKind;
import io.saeguard.detectors.spi.InvalidConfigException;
import io.saeguard.detectors.spi.RuleConfig;
import io.saeguard.detectors.spi.RuleContext;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalInt;
import java.util.OptionalLong;
import java.util.Set;

/**
 * Reads a definition's {@code rule:} mapping into its kind's config record with Jackson, and writes config records
 * back: the one binding for every rule kind, its rules stated on {@link DetectorKind}. Reading is three steps, each
 * failing with a {@link DetectorConfigException} that names the file, the key path and the fix:
 * <ol>
 *   <li>the mapping is checked against the record's properties as Jackson sees them: unknown keys (naming the allowed
 *       ones), missing required keys, and defaults ({@code @JsonProperty(defaultValue)}) filled in, so that these
 *       are reported before any constructor runs and a left-out primitive never binds as 0;</li>
 *   <li>Jackson binds the mapping with {@link StrictScalars}; a refused value or an {@link InvalidConfigException}
 *       from a record's constructor is translated here, with the path Jackson recorded;</li>
 *   <li>the kind {@linkplain DetectorKind#resolve resolves} what needs more than the mapping (probe weight files).</li>
 * </ol>
 * Stateless; the mappers are thread-safe.
 */
final class RuleBinding {
    private static final ObjectMapper READER = JsonMapper.builder()
            .propertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES,
                    DeserializationFeature.FAIL_ON_NUMBERS_FOR_ENUMS)
            .disable(DeserializationFeature.ACCEPT_FLOAT_AS_INT)
            .disable(MapperFeature.ALLOW_COERCION_OF_SCALARS)
            .addModule(new Jdk8Module())
            .addModule(StrictScalars.module()) // after Jdk8Module: the later module's deserializers win
            .build();
    /** Without the strict scalars: writing converts to a plain map, which must not re-check what it converts. */
    private static final ObjectMapper WRITER = JsonMapper.builder()
            .propertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .serializationInclusion(JsonInclude.Include.NON_ABSENT)
            .addModule(new Jdk8Module())
            .build();
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());
    private static final String KIND = "kind";

    private RuleBinding() {
    }

    /** Binds the {@code rule:} mapping (with its {@code kind} key) to {@code kind}'s config and resolves it. */
    static <C extends RuleConfig> C read(DetectorKind<C> kind, ConfigNode rule) throws DetectorConfigException {
        ObjectNode tree = ((ObjectNode) rule.json()).deepCopy();
        tree.remove(KIND);
        JavaType type = READER.constructType(kind.configType());
        check(tree, type, rule.path(), true, rule.file());
        C bound;
        try {
            bound = READER.treeToValue(tree, kind.configType());
        } catch (JsonMappingException e) {
            throw translate(e, tree, rule, kind.name());
        } catch (JsonProcessingException e) {
            throw new DetectorConfigException(rule.file(), rule.path(), e.getOriginalMessage(), "correct the rule", e);
        }
        RuleContext context = new RuleContext(rule.file(), rule.path(), rule.baseDir());
        try {
            return kind.resolve(bound, context);
        } catch (InvalidConfigException e) {
            throw new DetectorConfigException(rule.file(), join(rule.path(), e.key()), e.problem(), e.fix(), e);
        } catch (IllegalArgumentException e) {
            throw new DetectorConfigException(rule.file(), rule.path(), "invalid " + kind.name() + " rule: " + e.getMessage(),
                    "correct the rule", e);
        }
    }

    /** The config as a YAML mapping without {@code kind} (see {@link DetectorKind}, "Writing back"). */
    static Map<String, Object> write(RuleConfig config) {
        return WRITER.convertValue(config, new TypeReference<LinkedHashMap<String, Object>>() {
        });
    }

    // --- step 1: keys ---

    private static void check(JsonNode node, JavaType type, String path, boolean ruleRoot, String file) throws DetectorConfigException {
        if (type.isReferenceType()) {
            check(node, type.getReferencedType(), path, false, file);
        } else if (type.isCollectionLikeType() && node.isArray()) {
            for (int i = 0; i < node.size(); i++) {
                String at = path + "[" + i + "]";
                if (node.get(i).isNull()) {
                    throw new DetectorConfigException(file, at, "an empty entry in the list", "remove the '-' line or give it a value");
                }
                check(node.get(i), type.getContentType(), at, false, file);
            }
        } else if (node instanceof ObjectNode mapping && type.getRawClass().isRecord()) {
            checkMapping(mapping, type, path, ruleRoot, file);
        }
        // any other shape is Jackson's to refuse (step 2), with the expected type
    }

    private static void checkMapping(ObjectNode mapping, JavaType type, String path, boolean ruleRoot, String file)
            throws DetectorConfigException {
        List<BeanPropertyDefinition> properties = properties(type);
        List<String> keys = properties.stream().map(BeanPropertyDefinition::getName).toList();
        List<String> allowed = new ArrayList<>(keys);
        if (ruleRoot) {
            allowed.add(KIND);
        }
        for (String key : iterable(mapping.fieldNames())) {
            if (!keys.contains(key)) {
                throw ConfigNode.unknownKey(file, join(path, key), key, allowed);
            }
        }
        for (BeanPropertyDefinition p : properties) {
            String key = p.getName();
            JsonNode value = mapping.get(key);
            if (value != null && !value.isNull()) {
                check(value, p.getPrimaryType(), join(path, key), false, file);
                continue;
            }
            mapping.remove(key);
            String defaultValue = p.getMetadata().getDefaultValue();
            if (defaultValue != null) {
                mapping.set(key, yaml(defaultValue));
            } else if (!optional(p.getPrimaryType())) {
                throw new DetectorConfigException(file, join(path, key), "missing key '" + key + "' (" + expected(p.getPrimaryType()) + ")",
                        "add '" + key + ": " + example(p.getPrimaryType()) + "'");
            }
        }
    }

    private static List<BeanPropertyDefinition> properties(JavaType type) {
        BeanDescription description = READER.getDeserializationConfig().introspect(type);
        return description.findProperties();
    }

    private static boolean optional(JavaType type) {
        Class<?> raw = type.getRawClass();
        return raw == Optional.class || raw == OptionalInt.class || raw == OptionalDouble.class || raw == OptionalLong.class;
    }

    private static JsonNode yaml(String text) {
        try {
            return YAML.readTree(text);
        } catch (IOException e) {
            throw new UncheckedIOException("a @JsonProperty defaultValue is not YAML: " + text, e);
        }
    }

    private static <T> Iterable<T> iterable(Iterator<T> it) {
        List<T> out = new ArrayList<>();
        it.forEachRemaining(out::add);
        return out;
    }

    // --- step 2: Jackson's refusals ---

    private static DetectorConfigException translate(JsonMappingException e, JsonNode tree, ConfigNode rule, String kind) {
        String file = rule.file();
        String path = rule.path();
        String name = "";
        JsonNode found = tree;
        for (JsonMappingException.Reference r : e.getPath()) {
            if (r.getFieldName() != null) {
                name = r.getFieldName();
                path = join(path, name);
                found = found.path(name);
            } else if (r.getIndex() >= 0) {
                path = path + "[" + r.getIndex() + "]";
                found = found.path(r.getIndex());
            }
        }
        Optional<InvalidConfigException> invalid = cause(e, InvalidConfigException.class);
        if (invalid.isPresent()) {
            // a bare value (a dsg feature written as its id) has no keys below it: the key is the value's own path
            String key = found.isValueNode() ? path : join(path, invalid.get().key());
            return new DetectorConfigException(file, key, invalid.get().problem(), invalid.get().fix(), e);
        }
        Optional<IllegalArgumentException> refused = cause(e, IllegalArgumentException.class);
        if (refused.isPresent()) {
            return new DetectorConfigException(file, path, "invalid " + kind + " rule: " + refused.get().getMessage(), "correct the rule", e);
        }
        if (e instanceof UnrecognizedPropertyException u) {
            List<String> allowed = u.getKnownPropertyIds() == null ? List.of()
                    : u.getKnownPropertyIds().stream().map(String::valueOf).toList();
            return ConfigNode.unknownKey(file, path, u.getPropertyName(), allowed);
        }
        if (e instanceof MismatchedInputException m && m.getTargetType() != null) {
            return wrongType(file, path, name, READER.constructType(m.getTargetType()), found, e);
        }
        return new DetectorConfigException(file, path, e.getOriginalMessage(), "correct the value", e);
    }

    private static DetectorConfigException wrongType(String file, String path, String name, JavaType type, JsonNode found,
            JsonMappingException cause) {
        Class<?> raw = type.getRawClass();
        String is = ConfigNode.describe(found.isMissingNode() ? null : found);
        if (isNumber(raw) && found.isNumber() && !Double.isFinite(found.doubleValue())) {
            return new DetectorConfigException(file, path, "expected a finite number, found " + found.doubleValue(), "write a finite number", cause);
        }
        if (raw.isEnum() && found.isTextual()) {
            List<String> names = enumNames(raw);
            String s = found.textValue();
            String lower = s.toLowerCase(Locale.ROOT);
            return new DetectorConfigException(file, path, "'" + s + "' is not one of " + String.join("|", names),
                    names.contains(lower) ? "write '" + lower + "' in lower case" : "write one of: " + String.join(", ", names), cause);
        }
        String fix;
        if (isNumber(raw)) {
            fix = "write a plain number such as 1.5 (no quotes)";
        } else if (isInteger(raw)) {
            fix = "write a whole number such as 12 (no quotes, no decimal point)";
        } else if (raw == boolean.class || raw == Boolean.class) {
            fix = "write '" + name + ": true' or '" + name + ": false'";
        } else if (raw == String.class) {
            fix = "write '" + name + ": some-text'";
        } else if (raw.isEnum()) {
            fix = "write one of: " + String.join(", ", enumNames(raw));
        } else if (type.isCollectionLikeType()) {
            fix = "write the entries as a YAML list, one '- ...' per line";
        } else if (path.endsWith("]")) {
            fix = "write the entry as a mapping, '- " + properties(type).get(0).getName() + ": ...' with its other keys indented below it";
        } else {
            fix = "indent the keys of '" + name + "' under it";
        }
        return new DetectorConfigException(file, path, "expected " + expected(type) + ", found " + is, fix, cause);
    }

    /** What a value of this type is, in words. */
    private static String expected(JavaType type) {
        Class<?> raw = type.getRawClass();
        if (type.isReferenceType()) {
            return expected(type.getReferencedType());
        }
        if (isNumber(raw)) {
            return "a number";
        }
        if (isInteger(raw)) {
            return "an integer";
        }
        if (raw == boolean.class || raw == Boolean.class) {
            return "true or false";
        }
        if (raw == String.class) {
            return "non-empty text";
        }
        if (raw.isEnum()) {
            return "one of " + String.join("|", enumNames(raw));
        }
        if (type.isCollectionLikeType()) {
            return "a list";
        }
        String keys = String.join(", ", properties(type).stream().map(BeanPropertyDefinition::getName).toList());
        return (hasIntCreator(raw) ? "an integer or a mapping" : "a mapping") + " (keys: " + keys + ")";
    }

    private static String example(JavaType type) {
        Class<?> raw = type.getRawClass();
        if (isNumber(raw)) {
            return "1.0";
        }
        if (isInteger(raw)) {
            return "1";
        }
        if (raw == boolean.class || raw == Boolean.class) {
            return "true";
        }
        if (raw.isEnum()) {
            return enumNames(raw).get(0);
        }
        if (type.isCollectionLikeType()) {
            return "[...]";
        }
        return raw == String.class ? "..." : "{...}";
    }

    private static boolean isNumber(Class<?> raw) {
        return raw == double.class || raw == Double.class || raw == float.class || raw == Float.class || raw == OptionalDouble.class;
    }

    private static boolean isInteger(Class<?> raw) {
        return raw == int.class || raw == Integer.class || raw == long.class || raw == Long.class || raw == OptionalInt.class
                || raw == OptionalLong.class;
    }

    /** An enum's constants as YAML writes them (their {@code @JsonValue}). */
    private static List<String> enumNames(Class<?> raw) {
        return Arrays.stream(raw.getEnumConstants()).map(c -> WRITER.convertValue(c, String.class)).toList();
    }

    /** Whether a record may also be written as a bare integer: a static {@code @JsonCreator} taking one int. */
    private static boolean hasIntCreator(Class<?> raw) {
        for (Method m : raw.getDeclaredMethods()) {
            if (Modifier.isStatic(m.getModifiers()) && m.isAnnotationPresent(JsonCreator.class) && m.getParameterCount() == 1
                    && m.getParameterTypes()[0] == int.class) {
                return true;
            }
        }
        return false;
    }

    private static <T extends Throwable> Optional<T> cause(Throwable e, Class<T> type) {
        Set<Throwable> seen = new HashSet<>();
        for (Throwable t = e; t != null && seen.add(t); t = t.getCause()) {
            if (type.isInstance(t)) {
                return Optional.of(type.cast(t));
            }
        }
        return Optional.empty();
    }

    private static String join(String path, String key) {
        if (key.isEmpty()) {
            return path;
        }
        if (path.isEmpty()) {
            return key;
        }
        return key.startsWith("[") ? path + key : path + "." + key;
    }
}
