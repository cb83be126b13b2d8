package io.saeguard.detectors.rules;

import io.saeguard.detectors.spi.FeatureTally;
import io.saeguard.detectors.spi.RuleInput;
import io.saeguard.detectors.spi.TokenRule;

/** Logistic regression over raw activations: {@code p_t = σ(b + w · x_t)}; see {@link RawProbeConfig}. */
final class RawProbeRule implements TokenRule {
    private final float[] w;
    private final double bias;
    private final double fireAt;
    private final boolean logit;

    RawProbeRule(RawProbeConfig config) {
        w = config.weights().weight();
        bias = config.weights().bias();
        fireAt = config.fireAt();
        logit = config.tokenScore() == ProbeConfig.TokenScore.LOGIT;
    }

    @Override
    public void score(RuleInput in, double[] scores, FeatureTally tally) {
        int tokens = in.tokens();
        int d = in.dIn();
        float[] x = in.activations(); // x: [tokens, d_in], row-major
        for (int t = 0; t < tokens; t++) {
            if (!in.counted(t)) {
                scores[t] = 0;
                continue;
            }
            double z = bias;
            int base = t * d;
            for (int i = 0; i < d; i++) {
                z += w[i] * (double) x[base + i];
            }
            scores[t] = logit ? z : ProbeWeights.sigmoid(z);
        }
    }

    @Override
    public double fireLevel() {
        return logit ? Math.log(fireAt / (1 - fireAt)) : fireAt;
    }

    @Override
    public double finalScore(double aggregate) {
        return logit ? ProbeWeights.sigmoid(aggregate) : aggregate;
    }

    @Override
    public boolean needsActivations() {
        return true;
    }

    @Override
    public void checkActivationWidth(int dIn) {
        if (w.length != dIn) {
            throw new IllegalArgumentException("raw probe has " + w.length + " weights but the activations have d_in = " + dIn);
        }
    }
}
