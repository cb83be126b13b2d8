package io.saeguard.detectors.rules;

import io.saeguard.detectors.spi.FeatureTally;
import io.saeguard.detectors.spi.RuleInput;
import io.saeguard.detectors.spi.TokenRule;
import io.saeguard.topics.codes.SparseCodes;

/** Logistic regression over SAE codes: {@code p_t = σ(b + Σ_{f active at t} w_f a_f)}; see {@link ProbeConfig}. */
final class ProbeRule implements TokenRule {
    private final float[] w;
    private final double bias;
    private final double fireAt;
    private final boolean logit;
    private final double fireLevel;

    ProbeRule(ProbeConfig config) {
        w = config.weights().weight();
        bias = config.weights().bias();
        fireAt = config.fireAt();
        logit = config.tokenScore() == ProbeConfig.TokenScore.LOGIT;
        fireLevel = logit ? Math.log(fireAt / (1 - fireAt)) : fireAt;
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
            double z = bias;
            for (int j = 0; j < active; j++) {
                z += w[codes.featureAt(t, j)] * (double) codes.valueAt(t, j);
            }
            double p = logit ? z : ProbeWeights.sigmoid(z);
            scores[t] = p;
            if (p >= fireLevel) {
                for (int j = 0; j < active; j++) {
                    int f = codes.featureAt(t, j);
                    float v = codes.valueAt(t, j);
                    double c = w[f] * (double) v;
                    if (c > 0) {
                        tally.observe(f, v, c);
                    }
                }
            }
        }
    }

    /** The features with a non-zero weight: a feature weighted 0 adds nothing to {@code z}, whatever its code. */
    @Override
    public int[] readFeatures() {
        int n = 0;
        for (float x : w) {
            n += x != 0f ? 1 : 0;
        }
        int[] out = new int[n];
        int i = 0;
        for (int f = 0; f < w.length; f++) {
            if (w[f] != 0f) {
                out[i++] = f;
            }
        }
        return out;
    }

    @Override
    public double fireLevel() {
        return fireLevel;
    }

    @Override
    public double finalScore(double aggregate) {
        return logit ? ProbeWeights.sigmoid(aggregate) : aggregate;
    }

    @Override
    public void checkDictionary(int dSae) {
        if (w.length != dSae) {
            throw new IllegalArgumentException("probe has " + w.length + " weights but the SAE has d_sae = " + dSae);
        }
    }
}
