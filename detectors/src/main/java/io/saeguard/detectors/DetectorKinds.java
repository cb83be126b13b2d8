package io.saeguard.detectors;

import io.saeguard.detectors.spi.Aggregation;
import io.saeguard.detectors.spi.DetectorKind;
import io.saeguard.detectors.spi.RuleConfig;
import io.saeguard.detectors.spi.TokenRule;
import java.util.Collections;
import java.util.Map;
import java.util.Optional;
import java.util.ServiceLoader;
import java.util.TreeMap;

/**
 * The rule kinds on the class path, found once with {@link ServiceLoader} (this module's own and any
 * a plug-in jar adds through {@code META-INF/services/io.saeguard.detectors.spi.DetectorKind}).
 */
final class DetectorKinds {
    private static final Map<String, DetectorKind<?>> KINDS = load();
    private DetectorKinds() {}

    private static Map<String, DetectorKind<?>> load() {
        Map<String, DetectorKind<?>> kinds = new TreeMap<>();
        add(kinds, ServiceLoader.load(DetectorKind.class, DetectorKind.class.getClassLoader()));
        ClassLoader context = Thread.currentThread().getContextClassLoader();
        if (context != null && context != DetectorKind.class.getClassLoader()) {
            add(kinds, ServiceLoader.load(DetectorKind.class, context));
        }
        return Collections.unmodifiableMap(kinds);
    }

    @SuppressWarnings("rawtypes")
    private static void add(Map<String, DetectorKind<?>> kinds, ServiceLoader<DetectorKind> loader) {
        for (DetectorKind<?> k : loader) {
            DetectorKind<?> previous = kinds.putIfAbsent(k.name(), k);
            if (previous != null && previous.getClass() != k.getClass()) {
                throw new IllegalStateException("two rule kinds are named '" + k.name() + "': " + previous.getClass().getName()
                        + " and " + k.getClass().getName());
            }
        }
    }

    static Optional<DetectorKind<?>> byName(String name) {
        return Optional.ofNullable(KINDS.get(name));
    }

    static String names() {
        return String.join(", ", KINDS.keySet());
    }

    /** The kind owning a config record. */
    static DetectorKind<?> of(RuleConfig config) {
        DetectorKind<?> k = KINDS.get(config.kind());
        if (k == null || !k.configType().isInstance(config)) {
            throw new IllegalArgumentException("no rule kind on the class path for config " + config.getClass().getName()
                    + " (kind '" + config.kind() + "'; known kinds: " + names() + ")");
        }
        return k;
    }

    static TokenRule create(RuleConfig config) {
        return createTyped(of(config), config);
    }

    static Optional<Aggregation> aggregation(RuleConfig config) {
        return aggregationTyped(of(config), config);
    }

    /**
     * The config as a YAML mapping (without {@code kind}, which the caller writes first), such that
     * {@link RuleBinding#read} binds it back to an equal config: the record written by Jackson.
     */
    static Map<String, Object> write(RuleConfig config) {
        of(config); // a config no kind on the class path owns is a programming error, not a mapping to write
        return RuleBinding.write(config);
    }

    private static <C extends RuleConfig> TokenRule createTyped(DetectorKind<C> kind, RuleConfig config) {
        return kind.create(kind.configType().cast(config));
    }

    private static <C extends RuleConfig> Optional<Aggregation> aggregationTyped(DetectorKind<C> kind, RuleConfig config) {
        return kind.aggregation(kind.configType().cast(config));
    }
}
