package io.saeguard.sidecar.config;

import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.RecordComponent;
import java.lang.reflect.Type;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The keys of a config record tree ({@link ConfigFile}), read from the records themselves: a component's YAML key
 * (snake case, as Jackson binds it), the keys a mapping allows, the scalar keys an environment variable may
 * override, and what a key holds (for error messages). Stateless.
 */
final class ConfigSchema {
    private static final PropertyNamingStrategies.NamingBase NAMING = (PropertyNamingStrategies.NamingBase) PropertyNamingStrategies.SNAKE_CASE;
    private static final Set<Class<?>> SCALARS = Set.of(String.class, Integer.class, Boolean.class, Double.class);

    private ConfigSchema() {
    }

    /** The YAML key of a record component: {@code maxBatchTokens} → {@code max_batch_tokens}. */
    static String key(RecordComponent component) {
        return NAMING.translate(component.getName());
    }

    /** The keys a mapping bound to {@code record} allows, in declaration order. */
    static List<String> keys(Class<?> record) {
        return Arrays.stream(record.getRecordComponents()).map(ConfigSchema::key).toList();
    }

    /** Whether a component of this type is a scalar key (one value, overridable by an environment variable). */
    static boolean isScalar(Type type) {
        return type instanceof Class<?> c && SCALARS.contains(c);
    }

    /**
     * The dotted paths of the scalar keys reachable from {@code root} through records only (a list's elements or
     * a mapping's values have no fixed path), e.g. {@code kafka.bootstrap}, {@code delivery}.
     */
    static List<String> scalarPaths(Class<?> root) {
        List<String> out = new ArrayList<>();
        collect(root, "", out);
        return out;
    }

    private static void collect(Class<?> record, String prefix, List<String> out) {
        for (RecordComponent c : record.getRecordComponents()) {
            String path = prefix + key(c);
            if (isScalar(c.getGenericType())) {
                out.add(path);
            } else if (c.getType().isRecord()) {
                collect(c.getType(), path + ".", out);
            }
        }
    }

    /**
     * What sits at a path below {@code root}.
     *
     * @param type      the Java type there
     * @param component the record component at or above it (empty at the top)
     * @param depth     how many list or mapping levels lie between the component and the path
     */
    record Slot(Type type, Optional<RecordComponent> component, int depth) {
        Class<?> raw() {
            return ConfigSchema.raw(type);
        }
    }

    /**
     * Follows {@code path} (keys as {@code String}, list indices as {@code Integer}) from {@code root}; empty when the
     * path leaves the schema (an unknown key).
     */
    static Optional<Slot> resolve(Class<?> root, List<Object> path) {
        Slot at = new Slot(root, Optional.empty(), 0);
        for (Object segment : path) {
            Class<?> raw = at.raw();
            if (raw.isRecord()) {
                Optional<RecordComponent> c = Arrays.stream(raw.getRecordComponents()).filter(r -> key(r).equals(segment)).findFirst();
                if (c.isEmpty()) {
                    return Optional.empty();
                }
                at = new Slot(c.get().getGenericType(), c, 0);
            } else if (raw == List.class || raw == Map.class) {
                Type[] args = ((ParameterizedType) at.type()).getActualTypeArguments();
                at = new Slot(args[args.length - 1], at.component(), at.depth() + 1);
            } else {
                return Optional.empty();
            }
        }
        return Optional.of(at);
    }

    static Class<?> raw(Type type) {
        return type instanceof ParameterizedType p ? (Class<?>) p.getRawType() : (Class<?>) type;
    }

    /** A path as written in messages: {@code saes[0].special_token_ids}. */
    static String render(List<Object> path) {
        StringBuilder out = new StringBuilder();
        for (Object segment : path) {
            if (segment instanceof Integer i) {
                out.append('[').append(i).append(']');
            } else {
                out.append(out.isEmpty() ? "" : ".").append(segment);
            }
        }
        return out.toString();
    }
}
