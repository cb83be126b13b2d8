package io.saeguard.detectors.rules;

import io.saeguard.detectors.rules.FeaturesConfig.Match;
import io.saeguard.detectors.spi.FeatureTally;
import io.saeguard.detectors.spi.RuleInput;
import io.saeguard.detectors.spi.TokenRule;
import io.saeguard.topics.codes.SparseCodes;
import java.util.Arrays;
import java.util.Optional;

/** Scores tokens by listed-feature thresholds; see {@link FeaturesConfig} for the formulas. */
final class FeaturesRule implements TokenRule {
    private final FeaturesConfig config;
    private final Match match;
    private final int[] ids;
    /** any/all: 1 / threshold_f; weighted: weight_f / threshold. */
    private final double[] scale;
    private final FeatureIndex index;
    /** all: per-feature ratio of the current token. */
    private final double[] ratios;

    FeaturesRule(FeaturesConfig config) {
        this.config = config;
        this.match = config.match();
        int n = config.features().size();
        ids = new int[n];
        scale = new double[n];
        for (int i = 0; i < n; i++) {
            FeaturesConfig.Feature f = config.features().get(i);
            ids[i] = f.id();
            scale[i] = match == Match.WEIGHTED
                    ? f.weight().getAsDouble() / config.threshold().getAsDouble()
                    : 1.0 / f.threshold().getAsDouble();
        }
        index = new FeatureIndex(ids);
        ratios = new double[n];
    }

    @Override
    public void score(RuleInput in, double[] scores, FeatureTally tally) {
        SparseCodes codes = in.codes();
        int tokens = in.tokens();
        for (int t = 0; t < tokens; t++) {
            if (!in.counted(t)) {
                scores[t] = 0;
                continue;
            }
            int active = codes.activeCount(t);
            switch (match) {
                case ANY -> {
                    double best = 0;
                    for (int j = 0; j < active; j++) {
                        int k = index.slot(codes.featureAt(t, j));
                        if (k >= 0) {
                            float v = codes.valueAt(t, j);
                            double r = v * scale[k];
                            if (v > 0) {
                                tally.observe(ids[k], v, r);
                            }
                            best = Math.max(best, r);
                        }
                    }
                    scores[t] = best;
                }
                case ALL -> {
                    Arrays.fill(ratios, 0);
                    for (int j = 0; j < active; j++) {
                        int k = index.slot(codes.featureAt(t, j));
                        if (k >= 0) {
                            float v = codes.valueAt(t, j);
                            ratios[k] = v * scale[k];
                            if (v > 0) {
                                tally.observe(ids[k], v, ratios[k]);
                            }
                        }
                    }
                    double min = Double.POSITIVE_INFINITY;
                    for (double r : ratios) {
                        min = Math.min(min, r);
                    }
                    scores[t] = min;
                }
                case WEIGHTED -> {
                    double sum = 0;
                    for (int j = 0; j < active; j++) {
                        int k = index.slot(codes.featureAt(t, j));
                        if (k >= 0) {
                            float v = codes.valueAt(t, j);
                            double c = v * scale[k];
                            if (c > 0) {
                                tally.observe(ids[k], v, c);
                            }
                            sum += c;
                        }
                    }
                    scores[t] = sum;
                }
                default -> throw new IllegalStateException("unknown match " + match);
            }
        }
    }

    @Override
    public int[] namedFeatures() {
        return ids.clone();
    }

    @Override
    public Optional<String> label(int feature) {
        return FeaturesKind.find(config.features(), feature, true);
    }

    @Override
    public Optional<String> explanation(int feature) {
        return FeaturesKind.find(config.features(), feature, false);
    }
}
