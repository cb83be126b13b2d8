package io.saeguard.sae.compare;

import java.util.Arrays;
import java.util.stream.IntStream;

/**
 * Matches features by what they do on the same tokens: the Pearson correlation, over the tokens, of A feature
 * {@code i}'s activation with B feature {@code j}'s, for every pair, and for each A feature the B feature it correlates
 * with most. The mean of those best correlations over A's live features is reported as PW-MCC (pairwise mean best
 * correlation; 1 when B holds every A feature up to scale, and for an identical or permuted copy).
 *
 * <p>Pearson, with {@code n} tokens: {@code r_ij = (Σ_t a_ti b_tj / n − μ_i μ_j) / (σ_i σ_j)}, population moments,
 * zeros included. A feature constant over the tokens (dead on them) has no correlation: a dead A feature has no match
 * and B's dead features are never chosen.
 *
 * <p><b>Cost.</b> The cross sums come from the sparse codes: {@code Σ_t nnz_A(t) · nnz_B(t)} multiply-adds. They are
 * accumulated one block of A features at a time into a dense {@code [block, d_B]} array (at most
 * {@link #BLOCK_VALUES} doubles, 128 MiB), never the whole {@code d_A × d_B} matrix, and each block's rows are then
 * scanned for their maximum ({@code d_A · d_B} in all). Blocks run on the common fork-join pool.
 */
public final class ActivationCorrelation {
    /** Most doubles in one block's cross sums. */
    static final int BLOCK_VALUES = 1 << 24;

    private ActivationCorrelation() {
    }

    /** @param a A's codes; {@code b} B's, of the same tokens */
    public static FeatureMatch best(SparseRows a, SparseRows b) {
        return best(a, b, BLOCK_VALUES);
    }

    /** As {@link #best(SparseRows, SparseRows)}, with at most {@code blockValues} cross sums per block. */
    static FeatureMatch best(SparseRows a, SparseRows b, int blockValues) {
        if (a.tokens() != b.tokens()) {
            throw new IllegalArgumentException("A has codes of " + a.tokens() + " tokens but B of " + b.tokens());
        }
        int n = a.tokens();
        int dA = a.width();
        int dB = b.width();
        double[] meanA = new double[dA];
        double[] sdA = new double[dA];
        double[] meanB = new double[dB];
        double[] sdB = new double[dB];
        moments(a, meanA, sdA);
        moments(b, meanB, sdB);
        int[] best = new int[dA];
        double[] score = new double[dA];
        int block = Math.max(1, Math.min(dA, blockValues / Math.max(1, dB)));
        int blocks = (dA + block - 1) / block;
        int parallel = Math.max(1, Math.min(blocks, Runtime.getRuntime().availableProcessors()));
        // Blocks are shared out so at most `parallel` cross-sum arrays exist at once.
        IntStream.range(0, parallel).parallel().forEach(worker -> {
            double[] cross = null;
            for (int blk = worker; blk < blocks; blk += parallel) {
                int lo = blk * block;
                int hi = Math.min(dA, lo + block);
                if (cross == null) {
                    cross = new double[block * dB];
                } else {
                    Arrays.fill(cross, 0);
                }
                // cross[i - lo, j] = Σ_t a_ti b_tj over the tokens where both fire
                for (int t = 0; t < n; t++) {
                    int bs = b.offsets()[t];
                    int be = b.offsets()[t + 1];
                    for (int p = a.offsets()[t]; p < a.offsets()[t + 1]; p++) {
                        int i = a.ids()[p];
                        if (i < lo || i >= hi) {
                            continue;
                        }
                        double av = a.values()[p];
                        int row = (i - lo) * dB;
                        for (int q = bs; q < be; q++) {
                            cross[row + b.ids()[q]] += av * b.values()[q];
                        }
                    }
                }
                for (int i = lo; i < hi; i++) {
                    if (sdA[i] == 0) {
                        best[i] = -1;
                        score[i] = Double.NaN;
                        continue;
                    }
                    int row = (i - lo) * dB;
                    int arg = -1;
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < dB; j++) {
                        if (sdB[j] == 0) {
                            continue;
                        }
                        double r = (cross[row + j] / n - meanA[i] * meanB[j]) / (sdA[i] * sdB[j]);
                        if (r > max) {
                            max = r;
                            arg = j;
                        }
                    }
                    best[i] = arg;
                    score[i] = arg < 0 ? Double.NaN : max;
                }
            }
        });
        return new FeatureMatch(best, score);
    }

    /** Per feature, the mean and the population standard deviation over the tokens (zeros included). */
    static void moments(SparseRows codes, double[] mean, double[] sd) {
        int n = codes.tokens();
        double[] sq = new double[mean.length];
        for (int p = 0; p < codes.offsets()[n]; p++) {
            double v = codes.values()[p];
            mean[codes.ids()[p]] += v;
            sq[codes.ids()[p]] += v * v;
        }
        for (int f = 0; f < mean.length; f++) {
            mean[f] = n == 0 ? 0 : mean[f] / n;
            double var = n == 0 ? 0 : sq[f] / n - mean[f] * mean[f];
            // Below this relative size the variance is rounding of a constant feature, not a signal.
            sd[f] = var > 1e-12 * Math.max(1, sq[f] / Math.max(1, n)) ? Math.sqrt(var) : 0;
        }
    }
}
