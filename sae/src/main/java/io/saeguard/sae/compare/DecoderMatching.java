package io.saeguard.sae.compare;

import java.util.stream.IntStream;

/**
 * Matches features by the direction they write: for each feature of A, the feature of B whose unit-normalised decoder
 * row has the largest cosine with A's. Decoder-cosine matching is how SAEs trained with different seeds are compared in
 * "Sparse Autoencoders Trained on the Same Data Learn Different Features" (arXiv 2501.16615), which pairs features
 * one-to-one (Hungarian); here each A feature takes its best B feature independently, which is what a migration needs
 * (several A features may map to one B feature).
 *
 * <p>Cost {@code d_A · d_B · d_in} multiply-adds, spread over the common fork-join pool; memory: B's normalised rows.
 */
public final class DecoderMatching {
    private DecoderMatching() {
    }

    /**
     * @param decA {@code [dA, dIn]} row-major decoder rows of A
     * @param decB {@code [dB, dIn]} row-major decoder rows of B
     * @return per A feature the best B feature and its cosine; a zero row (of A, or every B row) has no match
     */
    public static FeatureMatch best(float[] decA, int dA, float[] decB, int dB, int dIn) {
        check(decA, dA, dIn, "A");
        check(decB, dB, dIn, "B");
        float[] unitB = normalised(decB, dB, dIn);
        float[] unitA = normalised(decA, dA, dIn);
        boolean[] zeroB = new boolean[dB];
        for (int j = 0; j < dB; j++) {
            zeroB[j] = isZero(unitB, j * dIn, dIn);
        }
        int[] best = new int[dA];
        double[] score = new double[dA];
        IntStream.range(0, dA).parallel().forEach(i -> {
            int arg = -1;
            double max = Double.NEGATIVE_INFINITY;
            int a = i * dIn;
            boolean zero = isZero(unitA, a, dIn);
            for (int j = 0; j < dB && !zero; j++) {
                if (zeroB[j]) {
                    continue;
                }
                double dot = dot(unitA, a, unitB, j * dIn, dIn);
                if (dot > max) {
                    max = dot;
                    arg = j;
                }
            }
            best[i] = arg;
            score[i] = arg < 0 ? Double.NaN : max;
        });
        return new FeatureMatch(best, score);
    }

    /** The cosine of A's decoder row {@code i} with B's row {@code j}; 0 when either is zero. */
    public static double cosine(float[] decA, int i, float[] decB, int j, int dIn) {
        double dot = 0;
        double na = 0;
        double nb = 0;
        for (int k = 0; k < dIn; k++) {
            double x = decA[i * dIn + k];
            double y = decB[j * dIn + k];
            dot += x * y;
            na += x * x;
            nb += y * y;
        }
        return na == 0 || nb == 0 ? 0 : dot / Math.sqrt(na * nb);
    }

    private static void check(float[] dec, int d, int dIn, String which) {
        if ((long) d * dIn != dec.length) {
            throw new IllegalArgumentException("decoder of " + which + " has " + dec.length + " values, not " + d + " x " + dIn);
        }
    }

    private static float[] normalised(float[] dec, int d, int dIn) {
        float[] out = new float[dec.length];
        for (int r = 0; r < d; r++) {
            double n = 0;
            for (int k = 0; k < dIn; k++) {
                double v = dec[r * dIn + k];
                n += v * v;
            }
            if (n > 0) {
                float inv = (float) (1 / Math.sqrt(n));
                for (int k = 0; k < dIn; k++) {
                    out[r * dIn + k] = dec[r * dIn + k] * inv;
                }
            }
        }
        return out;
    }

    private static boolean isZero(float[] m, int off, int n) {
        for (int k = 0; k < n; k++) {
            if (m[off + k] != 0) {
                return false;
            }
        }
        return true;
    }

    private static double dot(float[] x, int xo, float[] y, int yo, int n) {
        float s0 = 0;
        float s1 = 0;
        float s2 = 0;
        float s3 = 0;
        int k = 0;
        for (; k + 3 < n; k += 4) {
            s0 += x[xo + k] * y[yo + k];
            s1 += x[xo + k + 1] * y[yo + k + 1];
            s2 += x[xo + k + 2] * y[yo + k + 2];
            s3 += x[xo + k + 3] * y[yo + k + 3];
        }
        for (; k < n; k++) {
            s0 += x[xo + k] * y[yo + k];
        }
        return (double) s0 + s1 + s2 + s3;
    }
}
