package io.saeguard.detectors.rules;

import io.saeguard.detectors.spi.FeatureTally;
import io.saeguard.detectors.spi.RuleInput;
import io.saeguard.detectors.spi.TokenRule;
import io.saeguard.topics.codes.SparseCodes;
import java.util.Optional;

/**
 * DSG token rule: token score 1 when any selected feature's activation exceeds its threshold, else 0
 * ({@code fire_t = 1[∃ f ∈ S_N : a_f(t) > θ_f]}, docs/algorithms.md#dsg); the engine's {@code fraction}
 * aggregation turns that into ρ and {@link #finalScore} into ρ/τ.
 */
final class DsgRule implements TokenRule {
    private final DsgConfig config;
    private final int[] ids;
    private final double[] thresholds;
    private final FeatureIndex index;
    private final double tau;

    DsgRule(DsgConfig config) {
        this.config = config;
        int n = config.features().size();
        ids = new int[n];
        thresholds = new double[n];
        for (int i = 0; i < n; i++) {
            ids[i] = config.features().get(i).id();
            thresholds[i] = config.features().get(i).threshold();
        }
        index = new FeatureIndex(ids);
        tau = config.tau();
    }

    @Override
    public void score(RuleInput in, double[] scores, FeatureTally tally) {
        SparseCodes codes = in.codes();
        int tokens = in.tokens();
        for (int t = 0; t < tokens; t++) {
            double s = 0;
            if (in.counted(t)) {
                int active = codes.activeCount(t);
                for (int j = 0; j < active; j++) {
                    int k = index.slot(codes.featureAt(t, j));
                    if (k >= 0) {
                        float v = codes.valueAt(t, j);
                        if (v > thresholds[k]) {
                            s = 1;
                            tally.observe(ids[k], v, v);
                        }
                    }
                }
            }
            scores[t] = s;
        }
    }

    @Override
    public double finalScore(double rho) {
        return rho / tau;
    }

    @Override
    public int[] namedFeatures() {
        return ids.clone();
    }

    @Override
    public Optional<String> label(int feature) {
        return config.features().stream().filter(f -> f.id() == feature).findFirst().flatMap(DsgConfig.Feature::label);
    }

    @Override
    public Optional<String> explanation(int feature) {
        return config.features().stream().filter(f -> f.id() == feature).findFirst().flatMap(DsgConfig.Feature::explanation);
    }
}
