package io.saeguard.sidecar.metrics;

import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Exports {@link FeatureStats} (docs/algorithms.md#feature-metrics): {@code saeguard_feature_fires_total{sae,feature}},
 * {@code saeguard_feature_fire_rate{sae,feature}}, {@code saeguard_feature_baseline_density{sae,feature}}
 * for the watched features (named by detectors, plus the configured watch list) and the current
 * top-N most frequent ones — at most |watched| + N series per SAE and metric — and per SAE
 * {@code saeguard_dead_features}, {@code saeguard_feature_drift_js}, {@code saeguard_reconstruction_fvu}.
 */
public final class FeatureMetrics {
    private final List<FeatureStats> stats;
    private final java.util.function.Supplier<Map<String, Set<Integer>>> watched;
    private final int topN;

    public FeatureMetrics(PrometheusRegistry registry, List<FeatureStats> stats, java.util.function.Supplier<Map<String, Set<Integer>>> watched,
            int topN) {
        this.stats = List.copyOf(stats);
        this.watched = watched;
        this.topN = topN;
        CounterWithCallback.builder().name("saeguard_feature_fires_total")
                .help("Tokens on which a watched or top-N feature fired (non-zero code)").labelNames("sae", "feature")
                .callback(cb -> forExported((s, f) -> cb.call(s.fires(f), s.sae(), Integer.toString(f)))).register(registry);
        GaugeWithCallback.builder().name("saeguard_feature_fire_rate")
                .help("Recent fraction of tokens on which the feature fired (exponentially decayed window)").labelNames("sae", "feature")
                .callback(cb -> forExported((s, f) -> cb.call(s.fireRate(f), s.sae(), Integer.toString(f)))).register(registry);
        GaugeWithCallback.builder().name("saeguard_feature_baseline_density")
                .help("The feature's firing density on the SAE's training data (sparsity.safetensors)").labelNames("sae", "feature")
                .callback(cb -> forExported((s, f) -> s.baselineDensity(f).ifPresent(d -> cb.call(d, s.sae(), Integer.toString(f)))))
                .register(registry);
        GaugeWithCallback.builder().name("saeguard_dead_features").help("Features with no fire over the dead-feature window")
                .labelNames("sae").callback(cb -> this.stats.forEach(s -> cb.call(s.deadFeatures(), s.sae()))).register(registry);
        GaugeWithCallback.builder().name("saeguard_feature_drift_js")
                .help("Jensen-Shannon divergence (base 2) between live firing and baseline density distributions")
                .labelNames("sae").callback(cb -> this.stats.forEach(s -> s.drift().ifPresent(d -> cb.call(d, s.sae())))).register(registry);
        GaugeWithCallback.builder().name("saeguard_reconstruction_fvu")
                .help("Fraction of variance unexplained by the SAE on sampled tokens").labelNames("sae")
                .callback(cb -> this.stats.forEach(s -> s.fvu().ifPresent(v -> cb.call(v, s.sae())))).register(registry);
    }

    @FunctionalInterface
    private interface FeatureVisitor {
        void visit(FeatureStats stats, int feature);
    }

    /** The exported features of an SAE: watched ∪ current top-N. */
    Set<Integer> exported(FeatureStats s) {
        Set<Integer> ids = new TreeSet<>(watched.get().getOrDefault(s.sae(), Set.of()));
        for (int f : s.topFeatures(topN)) {
            ids.add(f);
        }
        ids.removeIf(f -> f < 0 || f >= s.dSae());
        return ids;
    }

    private void forExported(FeatureVisitor v) {
        for (FeatureStats s : stats) {
            for (int f : exported(s)) {
                v.visit(s, f);
            }
        }
    }
}
