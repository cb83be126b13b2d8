package io.saeguard.sidecar.metrics;

import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.LongSupplier;
import java.util.function.Supplier;

/**
 * Exports {@link FeatureStats} (docs/algorithms.md#feature-metrics). Per feature, for the watched features (named by
 * detectors, plus the configured watch list) and the top-N most frequent ones in the sample:
 * {@code saeguard_feature_sampled_fires_total{sae,feature}} (fires on sampled tokens; divide by
 * {@code saeguard_feature_sampled_tokens_total{sae}}), {@code saeguard_feature_fire_rate{sae,feature}} and
 * {@code saeguard_feature_baseline_density{sae,feature}}; for the watched features only,
 * {@code saeguard_feature_fires_total{sae,feature}} (exact: every token; divide by
 * {@code saeguard_tokens_encoded_total}). Per SAE {@code saeguard_feature_sampled_tokens_total},
 * {@code saeguard_dead_features}, {@code saeguard_feature_drift_js}, {@code saeguard_reconstruction_fvu}.
 *
 * <p>A feature that leaves the top-N keeps its series for {@link #TOP_N_GRACE} after it was last in it, so a series
 * does not vanish and reappear as ranks near the N-th shift (which would break {@code rate()} over it): at most
 * |watched| + N + (features that left the top-N within the grace) series per SAE and metric.
 */
public final class FeatureMetrics {
    /**
     * How long a feature that left the top-N stays exported: longer than the 15-minute windows the rules and
     * dashboards take rates over (dashboards/), so a rate over a series never starts or ends inside its window because
     * of rank jitter.
     */
    public static final Duration TOP_N_GRACE = Duration.ofMinutes(20);

    private final List<FeatureStats> stats;
    private final Supplier<Map<String, Set<Integer>>> watched;
    private final int topN;
    private final LongSupplier nowMillis;
    private final Map<String, Map<Integer, Long>> lastInTop = new HashMap<>(); // guarded by this

    public FeatureMetrics(PrometheusRegistry registry, List<FeatureStats> stats, Supplier<Map<String, Set<Integer>>> watched, int topN) {
        this(registry, stats, watched, topN, System::currentTimeMillis);
    }

    /** @param nowMillis the clock of the top-N grace period */
    public FeatureMetrics(PrometheusRegistry registry, List<FeatureStats> stats, Supplier<Map<String, Set<Integer>>> watched, int topN,
            LongSupplier nowMillis) {
        this.stats = List.copyOf(stats);
        this.watched = watched;
        this.topN = topN;
        this.nowMillis = nowMillis;
        CounterWithCallback.builder().name("saeguard_feature_fires_total")
                .help("Tokens on which a watched feature fired (non-zero code), counted on every token").labelNames("sae", "feature")
                .callback(cb -> forWatched((s, f) -> cb.call(s.fires(f), s.sae(), Integer.toString(f)))).register(registry);
        CounterWithCallback.builder().name("saeguard_feature_sampled_fires_total")
                .help("Sampled tokens on which a watched or top-N feature fired; divide by saeguard_feature_sampled_tokens_total")
                .labelNames("sae", "feature")
                .callback(cb -> forExported((s, f) -> cb.call(s.sampledFires(f), s.sae(), Integer.toString(f)))).register(registry);
        CounterWithCallback.builder().name("saeguard_feature_sampled_tokens_total")
                .help("Tokens whose full codes the sampled feature metrics (top-N, drift, dead features, sampled fires) were computed on")
                .labelNames("sae").callback(cb -> this.stats.forEach(s -> cb.call(s.sampledTokens(), s.sae()))).register(registry);
        GaugeWithCallback.builder().name("saeguard_feature_fire_rate")
                .help("Recent fraction of tokens on which the feature fired (exponentially decayed window; exact for watched features, "
                        + "else on the sampled tokens)").labelNames("sae", "feature")
                .callback(cb -> forExported((s, f) -> cb.call(s.fireRate(f), s.sae(), Integer.toString(f)))).register(registry);
        GaugeWithCallback.builder().name("saeguard_feature_baseline_density")
                .help("The feature's firing density on the SAE's training data (sparsity.safetensors)").labelNames("sae", "feature")
                .callback(cb -> forExported((s, f) -> s.baselineDensity(f).ifPresent(d -> cb.call(d, s.sae(), Integer.toString(f)))))
                .register(registry);
        GaugeWithCallback.builder().name("saeguard_dead_features").help("Features with no fire over the dead-feature window")
                .labelNames("sae").callback(cb -> this.stats.forEach(s -> cb.call(s.deadFeatures(), s.sae()))).register(registry);
        GaugeWithCallback.builder().name("saeguard_feature_drift_js")
                .help("Jensen-Shannon divergence (base 2) between live firing (sampled tokens) and baseline density distributions")
                .labelNames("sae").callback(cb -> this.stats.forEach(s -> s.drift().ifPresent(d -> cb.call(d, s.sae())))).register(registry);
        GaugeWithCallback.builder().name("saeguard_reconstruction_fvu")
                .help("Fraction of variance unexplained by the SAE on sampled tokens").labelNames("sae")
                .callback(cb -> this.stats.forEach(s -> s.fvu().ifPresent(v -> cb.call(v, s.sae())))).register(registry);
    }

    @FunctionalInterface
    private interface FeatureVisitor {
        void visit(FeatureStats stats, int feature);
    }

    /** The watched features of an SAE (within its dictionary). */
    Set<Integer> watched(FeatureStats s) {
        Set<Integer> ids = new TreeSet<>(watched.get().getOrDefault(s.sae(), Set.of()));
        ids.removeIf(f -> f < 0 || f >= s.dSae());
        return ids;
    }

    /** The exported features of an SAE: watched ∪ current top-N ∪ those in the top-N within {@link #TOP_N_GRACE}. */
    synchronized Set<Integer> exported(FeatureStats s) {
        Set<Integer> ids = watched(s);
        long now = nowMillis.getAsLong();
        Map<Integer, Long> seen = lastInTop.computeIfAbsent(s.sae(), k -> new HashMap<>());
        for (int f : s.topFeatures(topN)) {
            seen.put(f, now);
        }
        seen.values().removeIf(t -> now - t > TOP_N_GRACE.toMillis());
        ids.addAll(seen.keySet());
        return ids;
    }

    private void forWatched(FeatureVisitor v) {
        for (FeatureStats s : stats) {
            for (int f : watched(s)) {
                v.visit(s, f);
            }
        }
    }

    private void forExported(FeatureVisitor v) {
        for (FeatureStats s : stats) {
            for (int f : exported(s)) {
                v.visit(s, f);
            }
        }
    }
}
