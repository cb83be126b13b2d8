package io.saeguard.detectors.select;

import io.saeguard.topics.codes.SparseCodes;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.stream.IntStream;

/**
 * Logistic probes on mean-pooled examples, the {@code probe} and {@code raw-probe} rules of {@code saeguard select}
 * (docs/algorithms.md#probes-from-text).
 *
 * <p><b>Mean pooling.</b> An example is the mean of its counted tokens' vectors (SAE codes or raw activations). The
 * probe is linear, so {@code b + w · mean_t x_t = mean_t (b + w · x_t)}: the detector written with
 * {@code token_score: logit} and {@code aggregate: mean} scores a request exactly as the probe was trained, streaming
 * chunk by chunk. Max pooling of codes (per feature) has no such per-token form and would need per-feature request
 * state in the engine.
 *
 * <p><b>Sparse probe.</b> Features are ranked by {@code |m⁺_f − m⁻_f|} over the pooled training codes (the
 * sparse-probing paper's mean-difference top-k, arXiv 2502.16681), the first {@code k} kept, and an L2 logistic
 * regression ({@link LogisticRegression}) fitted on those {@code k} columns; every other weight is 0, so the probe
 * names {@code k} features.
 *
 * @param weight   weights over the full input width (zeros outside {@code features} for the sparse probe)
 * @param bias     the intercept
 * @param features the inputs with a weight (all of them for the dense probe), in rank order
 * @param iterations fitting iterations
 */
public record PooledProbe(float[] weight, double bias, int[] features, int iterations) {
    public PooledProbe {
        Objects.requireNonNull(weight, "weight");
        Objects.requireNonNull(features, "features");
    }

    /** {@code σ(bias + weight · x)} for a pooled row. */
    public double probability(double[] x) {
        double z = bias;
        for (int j = 0; j < x.length; j++) {
            z += weight[j] * x[j];
        }
        return LogisticRegression.sigmoid(z);
    }

    /** Mean of the listed tokens' codes: {@code [d_sae]}. */
    static double[] poolCodes(SparseCodes codes, int[] tokens) {
        double[] out = new double[codes.dSae()];
        for (int t : tokens) {
            for (int j = 0; j < codes.activeCount(t); j++) {
                out[codes.featureAt(t, j)] += codes.valueAt(t, j);
            }
        }
        for (int f = 0; f < out.length; f++) {
            out[f] /= Math.max(1, tokens.length);
        }
        return out;
    }

    /** Mean of the listed tokens' activation rows: {@code [d_in]}. */
    static double[] poolActivations(float[] x, int d, int[] tokens) {
        double[] out = new double[d];
        for (int t : tokens) {
            for (int j = 0; j < d; j++) {
                out[j] += x[t * d + j];
            }
        }
        for (int j = 0; j < d; j++) {
            out[j] /= Math.max(1, tokens.length);
        }
        return out;
    }

    /** The dense probe: L2 logistic regression on every column of the pooled rows. */
    public static PooledProbe dense(List<double[]> rows, boolean[] labels, double l2) {
        int d = rows.get(0).length;
        LogisticRegression.Model m = LogisticRegression.fit(flatten(rows, IntStream.range(0, d).toArray()), rows.size(), d, labels,
                LogisticRegression.Options.defaults().withL2(l2));
        return new PooledProbe(m.weightsAsFloats(), m.bias(), IntStream.range(0, d).toArray(), m.iterations());
    }

    /** The sparse probe: the top {@code k} features by |mean difference|, then L2 logistic regression on them. */
    public static PooledProbe sparse(List<double[]> rows, boolean[] labels, int k, double l2) {
        int d = rows.get(0).length;
        int[] chosen = topByMeanDifference(rows, labels, k);
        LogisticRegression.Model m = LogisticRegression.fit(flatten(rows, chosen), rows.size(), chosen.length, labels,
                LogisticRegression.Options.defaults().withL2(l2));
        float[] w = new float[d];
        for (int i = 0; i < chosen.length; i++) {
            w[chosen[i]] = (float) m.weight()[i];
        }
        return new PooledProbe(w, m.bias(), chosen, m.iterations());
    }

    /** Columns ranked by {@code |mean over positives − mean over negatives|} (ties: lower index), the first k with a difference. */
    static int[] topByMeanDifference(List<double[]> rows, boolean[] labels, int k) {
        int d = rows.get(0).length;
        double[] sumP = new double[d];
        double[] sumN = new double[d];
        int np = 0;
        for (int i = 0; i < rows.size(); i++) {
            double[] r = rows.get(i);
            double[] acc = labels[i] ? sumP : sumN;
            np += labels[i] ? 1 : 0;
            for (int j = 0; j < d; j++) {
                acc[j] += r[j];
            }
        }
        int nn = rows.size() - np;
        if (np == 0 || nn == 0) {
            throw new IllegalArgumentException("a probe needs positive and negative training examples, got " + np + " and " + nn);
        }
        double[] diff = new double[d];
        for (int j = 0; j < d; j++) {
            diff[j] = Math.abs(sumP[j] / np - sumN[j] / nn);
        }
        return IntStream.range(0, d).boxed().filter(j -> diff[j] > 0)
                .sorted(Comparator.<Integer>comparingDouble(j -> -diff[j]).thenComparingInt(j -> j)).limit(k)
                .mapToInt(Integer::intValue).toArray();
    }

    private static float[] flatten(List<double[]> rows, int[] columns) {
        int d = columns.length;
        if (d == 0) {
            throw new IllegalArgumentException("no input separates the classes: every feature has the same mean on both");
        }
        float[] x = new float[rows.size() * d];
        for (int i = 0; i < rows.size(); i++) {
            double[] r = rows.get(i);
            for (int j = 0; j < d; j++) {
                x[i * d + j] = (float) r[columns[j]];
            }
        }
        return x;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof PooledProbe p && Arrays.equals(p.weight, weight) && p.bias == bias && Arrays.equals(p.features, features);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(weight) * 31 + Double.hashCode(bias);
    }

    @Override
    public String toString() {
        return "PooledProbe[d=" + weight.length + ", features=" + features.length + ", bias=" + bias + "]";
    }
}
