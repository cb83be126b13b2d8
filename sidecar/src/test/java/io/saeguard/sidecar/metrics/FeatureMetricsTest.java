package io.saeguard.sidecar.metrics;

import static org.assertj.core.api.Assertions.assertThat;

import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.saeguard.topics.codes.SparseCodes;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class FeatureMetricsTest {
    @Test
    void aFeatureThatLeavesTheTopNKeepsItsSeriesForTheGracePeriod() {
        // Given top-1 export over an SAE where feature 0 leads, then feature 2 takes over
        FeatureStats s = new FeatureStats("s", 3, Optional.empty(), 1, 1_000_000, 0);
        AtomicLong now = new AtomicLong(0);
        FeatureMetrics m = new FeatureMetrics(new PrometheusRegistry(), List.of(s), () -> Map.of("s", Set.of(1)), 1, now::get);
        s.record(SparseCodes.fromPadded("s", 3, 2, 1, new int[] {0, 0}, new float[] {1, 1}, 0));
        assertThat(m.exported(s)).containsExactly(0, 1);

        // When feature 2 leads from then on
        s.record(SparseCodes.fromPadded("s", 3, 40, 1, new int[40], new float[40], 0)); // 40 silent tokens: feature 0 decays
        s.record(SparseCodes.fromPadded("s", 3, 1, 1, new int[] {2}, new float[] {1}, 0));
        now.set(FeatureMetrics.TOP_N_GRACE.toMillis());

        // Then feature 0 stays exported until the grace has passed, beside the watched feature and the new top
        assertThat(m.exported(s)).containsExactly(0, 1, 2);
        now.set(FeatureMetrics.TOP_N_GRACE.toMillis() + 1);
        assertThat(m.exported(s)).containsExactly(1, 2);
    }
}
