package io.saeguard.sidecar.pipeline;

import io.saeguard.detectors.DecoderDirections;
import io.saeguard.detectors.DetectorDefinition;
import io.saeguard.detectors.DetectorEngine;
import io.saeguard.detectors.StateLimits;
import io.saeguard.sae.Sae;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The running detectors: the {@link DetectorEngine}, which only the engine thread uses, and read-only views of it for
 * every other thread (definitions, watched features with {@code metrics.watch}, feature labels, steering vectors),
 * immutable snapshots replaced whenever a detector changes.
 */
final class LiveDetectors {
    private final DetectorEngine engine;
    private final Map<String, Sae> saes;
    private final StateLimits limits;
    private final Map<String, Set<Integer>> metricsWatch;
    private volatile List<DetectorDefinition> definitions = List.of();
    private volatile Map<String, Set<Integer>> watched = Map.of();
    private volatile Map<String, Map<Integer, String>> labels = Map.of();
    private volatile Map<String, float[]> steeringVectors = Map.of();

    /**
     * @param definitions  the detectors at start, each already {@link #check checked}
     * @param metricsWatch features {@code metrics.watch} adds to the watched set, per SAE
     */
    LiveDetectors(List<DetectorDefinition> definitions, Map<String, Sae> saes, StateLimits limits, Map<String, Set<Integer>> metricsWatch) {
        this.saes = Map.copyOf(saes);
        this.limits = limits;
        this.metricsWatch = Map.copyOf(metricsWatch);
        this.engine = DetectorEngine.create(definitions, directions(this.saes), limits);
        refreshViews();
    }

    /**
     * Refuses a detector this sidecar cannot run: one naming an SAE it does not load, one that does not compile, or one
     * naming a feature id at or above that SAE's {@code d_sae} (which would otherwise load and then never fire).
     *
     * @throws InvalidRequestException naming the detector and what is wrong
     */
    static void check(DetectorDefinition def, Map<String, Sae> saes, StateLimits limits) {
        Sae sae = saes.get(def.sae());
        if (sae == null) {
            throw new InvalidRequestException("detector '" + def.id() + "' names unknown SAE id '" + def.sae() + "': this sidecar does not "
                    + "load it (saes: " + String.join(", ", saes.keySet()) + ")");
        }
        int dSae = sae.config().dSae();
        int vector = def.policy().vectorFeature().orElse(0);
        if (vector < 0 || vector >= dSae) {
            throw outOfRange(def, vector, dSae);
        }
        DetectorEngine alone;
        try {
            alone = DetectorEngine.create(List.of(def), directions(saes), limits);
        } catch (RuntimeException e) {
            throw new InvalidRequestException(e.getMessage(), e);
        }
        for (int f : alone.watchedFeatures().getOrDefault(def.sae(), Set.of())) {
            if (f < 0 || f >= dSae) {
                throw outOfRange(def, f, dSae);
            }
        }
    }

    private static InvalidRequestException outOfRange(DetectorDefinition def, int feature, int dSae) {
        return new InvalidRequestException("detector '" + def.id() + "' names feature " + feature + ", but SAE '" + def.sae() + "' has "
                + dSae + " features (ids 0.." + (dSae - 1) + ")");
    }

    /** The engine (engine thread only). */
    DetectorEngine engine() {
        return engine;
    }

    /**
     * Replaces the detector with the same id, or adds it (engine thread only); the views follow.
     *
     * @return whether a detector with its id existed
     * @throws InvalidRequestException when it cannot run; the running version stays in force
     */
    boolean replace(DetectorDefinition def) {
        check(def, saes, limits);
        boolean existed = engine.definition(def.id()).isPresent();
        try {
            engine.withDefinition(def);
        } catch (IllegalArgumentException e) {
            throw new InvalidRequestException(e.getMessage(), e);
        }
        refreshViews();
        return existed;
    }

    /**
     * Removes the detector with this id, if there is one (engine thread only); the views follow. Its per-request state
     * goes with it.
     *
     * @return whether it existed
     */
    boolean remove(String id) {
        boolean existed = engine.definition(id).isPresent();
        if (existed) {
            engine.withoutDefinition(id);
            refreshViews();
        }
        return existed;
    }

    /** The definitions in evaluation order (any thread). */
    List<DetectorDefinition> definitions() {
        return definitions;
    }

    /** Features named by the detectors plus {@code metrics.watch}, per SAE (any thread). */
    Map<String, Set<Integer>> watched() {
        return watched;
    }

    /** The labels the detectors give their features, per SAE (any thread). */
    Map<String, Map<Integer, String>> labels() {
        return labels;
    }

    /** Every direction a steer or clamp decision may name (any thread). */
    Map<String, float[]> steeringVectors() {
        return steeringVectors;
    }

    private void refreshViews() {
        Map<String, Set<Integer>> w = new LinkedHashMap<>();
        engine.watchedFeatures().forEach((sae, ids) -> w.computeIfAbsent(sae, k -> new TreeSet<>()).addAll(ids));
        metricsWatch.forEach((sae, ids) -> w.computeIfAbsent(sae, k -> new TreeSet<>()).addAll(ids));
        w.replaceAll((sae, ids) -> Set.copyOf(ids));
        watched = Map.copyOf(w);
        labels = engine.featureLabels();
        definitions = engine.definitions();
        steeringVectors = engine.steeringVectors();
    }

    private static DecoderDirections directions(Map<String, Sae> saes) {
        return new DecoderDirections() {
            @Override
            public int dIn(String sae) {
                return require(sae).config().dIn();
            }

            @Override
            public void direction(String sae, int feature, float[] dst) {
                require(sae).decoderRow(feature, dst);
            }

            private Sae require(String sae) {
                Sae s = saes.get(sae);
                if (s == null) {
                    throw new IllegalArgumentException("detectors name SAE '" + sae + "', which is not configured");
                }
                return s;
            }
        };
    }
}
