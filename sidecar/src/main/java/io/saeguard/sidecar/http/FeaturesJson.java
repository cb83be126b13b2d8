package io.saeguard.sidecar.http;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.saeguard.sidecar.metrics.FeatureStats;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/** The body of {@code GET /v1/features/top}: per SAE its health figures and its top and watched features. */
final class FeaturesJson {
    private static final ObjectMapper JSON = new ObjectMapper();

    private FeaturesJson() {
    }

    /**
     * The {@code n} most frequent features per SAE, then its watched ones, with their fire counts and rates, baseline
     * densities and labels; and the SAE's tokens, dead features, drift and FVU.
     */
    static String top(List<FeatureStats> stats, Map<String, Set<Integer>> watched, Map<String, Map<Integer, String>> labels, int n) {
        ObjectNode root = JSON.createObjectNode();
        ArrayNode list = root.putArray("saes");
        for (FeatureStats s : stats) {
            ObjectNode o = list.addObject().put("sae", s.sae()).put("d_sae", s.dSae()).put("tokens", s.tokens())
                    .put("sampled_tokens", s.sampledTokens()).put("dead_features", s.deadFeatures());
            s.drift().ifPresent(d -> o.put("drift_js", d));
            s.fvu().ifPresent(v -> o.put("fvu", v));
            ArrayNode fs = o.putArray("features");
            Set<Integer> mine = watched.getOrDefault(s.sae(), Set.of());
            Map<Integer, String> named = labels.getOrDefault(s.sae(), Map.of());
            java.util.LinkedHashSet<Integer> ids = new java.util.LinkedHashSet<>();
            for (int f : s.topFeatures(n)) {
                ids.add(f);
            }
            ids.addAll(new java.util.TreeSet<>(mine));
            for (int f : ids) {
                if (f < 0 || f >= s.dSae()) {
                    continue;
                }
                // fires: on every token for a feature counted exactly (watched), else on the sampled tokens
                ObjectNode fo = fs.addObject().put("id", f).put("fires", s.exact(f) ? s.fires(f) : s.sampledFires(f))
                        .put("sampled_fires", s.sampledFires(f)).put("fire_rate", s.fireRate(f)).put("watched", mine.contains(f));
                s.baselineDensity(f).ifPresent(d -> fo.put("baseline_density", d));
                Optional.ofNullable(named.get(f)).ifPresent(l -> fo.put("label", l));
            }
        }
        return root.toString();
    }
}
