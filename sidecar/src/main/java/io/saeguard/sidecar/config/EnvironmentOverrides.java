package io.saeguard.sidecar.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Environment variables that override the config file's scalar keys: {@code SAEGUARD_} + the key's dotted path in
 * upper case with {@code _} for {@code .} ({@code batching.max_delay_ms} → {@code SAEGUARD_BATCHING_MAX_DELAY_MS}).
 * The keys are those of the config records ({@link ConfigSchema#scalarPaths}), so a key added to a record is
 * overridable with no list to update. Any other {@code SAEGUARD_*} variable is most likely a misspelt override and
 * is logged once as a warning, except those the project reads for other purposes ({@link #OTHER_USES},
 * {@link #OTHER_USE_PREFIXES}).
 */
final class EnvironmentOverrides {
    private static final Logger LOGGER = LoggerFactory.getLogger(EnvironmentOverrides.class);
    static final String PREFIX = "SAEGUARD_";

    /**
     * {@code SAEGUARD_*} variables that are not config overrides: {@code SAEGUARD_DATA_DIR} (where tests and the catalog
     * build find the labelled data), {@code SAEGUARD_DEBUG} (the CLI prints stack
     * traces), {@code SAEGUARD_DJL_CACHE} (the engine's default DJL cache), {@code SAEGUARD_CACHE} (where SAEs
     * named by release are kept), {@code SAEGUARD_REQUIRE_TOOLS} (tests fail
     * instead of skipping when an external tool is missing), {@code SAEGUARD_JAR}, {@code SAEGUARD_JAVA},
     * {@code SAEGUARD_MAKE_SAE}, {@code SAEGUARD_TEST_SEED} (the Python tests), {@code SAEGUARD_GPU_PYTHON}
     * ({@code bench/gpu.sh}), {@code SAEGUARD_BOOTSTRAP}, {@code SAEGUARD_CHECK_URL} and {@code SAEGUARD_CHECK_TOKEN} (the LLM server of the
     * sidecar-in-pod Kubernetes overlay).
     */
    static final Set<String> OTHER_USES = Set.of("SAEGUARD_DEBUG", "SAEGUARD_DATA_DIR", "SAEGUARD_DJL_CACHE", "SAEGUARD_CACHE", "SAEGUARD_REQUIRE_TOOLS", "SAEGUARD_JAR",
            "SAEGUARD_JAVA", "SAEGUARD_MAKE_SAE", "SAEGUARD_TEST_SEED", "SAEGUARD_GPU_PYTHON", "SAEGUARD_BOOTSTRAP", "SAEGUARD_CHECK_URL", "SAEGUARD_CHECK_TOKEN");
    /** Prefixes of variable families that are not config overrides: {@code SAEGUARD_BENCH_*} (the benchmark scripts). */
    static final List<String> OTHER_USE_PREFIXES = List.of("SAEGUARD_BENCH_");

    private static final Set<String> WARNED = ConcurrentHashMap.newKeySet();

    private EnvironmentOverrides() {
    }

    /** The override variables of a config record tree, each with the dotted key path it sets, in declaration order. */
    static Map<String, String> variables(Class<? extends Record> root) {
        Map<String, String> out = new LinkedHashMap<>();
        for (String path : ConfigSchema.scalarPaths(root)) {
            out.put(variable(path), path);
        }
        return out;
    }

    /** The variable that overrides {@code path}: {@code http.port} → {@code SAEGUARD_HTTP_PORT}. */
    static String variable(String path) {
        return PREFIX + path.toUpperCase(Locale.ROOT).replace('.', '_');
    }

    /**
     * Sets the keys named by the set override variables in {@code root} (as text; binding converts) and returns the
     * key paths set, each with its variable, so errors about them can name the variable.
     *
     * @throws ConfigException when a section on the way is not a mapping in the file
     */
    static Map<String, String> apply(ObjectNode root, Map<String, String> env, Class<? extends Record> rootType, String source)
            throws ConfigException {
        Map<String, String> applied = new LinkedHashMap<>();
        for (Map.Entry<String, String> v : variables(rootType).entrySet()) {
            String value = env.get(v.getKey());
            if (value == null) {
                continue;
            }
            String[] parts = v.getValue().split("\\.");
            ObjectNode node = root;
            for (int i = 0; i < parts.length - 1; i++) {
                JsonNode child = node.get(parts[i]);
                if (child == null || child.isNull()) {
                    child = node.putObject(parts[i]);
                } else if (!child.isObject()) {
                    throw new ConfigException(source + ": '" + parts[i] + "' must be a mapping (overridden by " + v.getKey() + ")");
                }
                node = (ObjectNode) child;
            }
            node.put(parts[parts.length - 1], value);
            applied.put(v.getValue(), v.getKey());
        }
        return applied;
    }

    /** The {@code SAEGUARD_*} variables in {@code env} that are neither overrides nor of another known use, sorted. */
    static Set<String> unknown(Map<String, String> env, Class<? extends Record> rootType) {
        Set<String> overrides = variables(rootType).keySet();
        Set<String> out = new TreeSet<>();
        for (String name : env.keySet()) {
            if (name.startsWith(PREFIX) && !overrides.contains(name) && !OTHER_USES.contains(name)
                    && OTHER_USE_PREFIXES.stream().noneMatch(name::startsWith)) {
                out.add(name);
            }
        }
        return out;
    }

    /** Logs each unknown {@code SAEGUARD_*} variable once per process (a config is loaded again by tests and tools). */
    static void warnUnknown(Map<String, String> env, Class<? extends Record> rootType) {
        for (String name : unknown(env, rootType)) {
            if (WARNED.add(name)) {
                LOGGER.atWarn().addKeyValue("variable", name)
                        .log("{} is set but is not a config override, so it changes nothing; check its spelling against the keys "
                                + "(SAEGUARD_ + the key path in upper case with _ for ., e.g. SAEGUARD_HTTP_PORT)", name);
            }
        }
    }
}
