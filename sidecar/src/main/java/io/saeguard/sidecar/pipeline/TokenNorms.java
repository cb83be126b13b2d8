package io.saeguard.sidecar.pipeline;

import io.saeguard.topics.activation.ActivationChunk;

/** L2 norm of each token's activation vector: detectors scale clamp values by it. */
public final class TokenNorms {
    private TokenNorms() {
    }

    /** Norms of the rows of {@code x} ({@code [tokens, dIn]}, row-major); a row holding NaN or infinity gets a non-finite norm. */
    public static float[] of(float[] x, int tokens, int dIn) {
        float[] out = new float[tokens];
        for (int t = 0; t < tokens; t++) {
            out[t] = (float) Math.sqrt(sumOfSquares(x, t * dIn, dIn));
        }
        return out;
    }

    /**
     * Norms of the rows as {@link #of}, or null when some value is NaN or infinite. One pass does both: a row's sum
     * of squares in double is finite exactly when all its values are (a finite float squared is below 1.2e77, so no
     * row of finite values overflows), which is how the sidecar's poll thread checks each activation record.
     */
    public static float[] ofFinite(float[] x, int tokens, int dIn) {
        float[] out = new float[tokens];
        for (int t = 0; t < tokens; t++) {
            double s = sumOfSquares(x, t * dIn, dIn);
            if (!Double.isFinite(s)) {
                return null;
            }
            out[t] = (float) Math.sqrt(s);
        }
        return out;
    }

    /**
     * {@link #ofFinite(float[], int, int)} for a record's activations, read one row at a time through {@code row} (at
     * least d_in long): a BF16 or F16 record is widened row by row, never into an F32 copy of the whole record.
     */
    public static float[] ofFinite(ActivationChunk chunk, float[] row) {
        int tokens = chunk.tokens();
        int dIn = chunk.dIn();
        float[] out = new float[tokens];
        for (int t = 0; t < tokens; t++) {
            chunk.copyRows(t, 1, row, 0);
            double s = sumOfSquares(row, 0, dIn);
            if (!Double.isFinite(s)) {
                return null;
            }
            out[t] = (float) Math.sqrt(s);
        }
        return out;
    }

    /** Where a record's first non-finite value is, for its dead-letter reason; the record has one ({@link #ofFinite} said so). */
    public static String describeNonFinite(ActivationChunk chunk, float[] row) {
        int dIn = chunk.dIn();
        for (int t = 0; t < chunk.tokens(); t++) {
            chunk.copyRows(t, 1, row, 0);
            for (int j = 0; j < dIn; j++) {
                if (!Float.isFinite(row[j])) {
                    return "token " + t + " (position " + (chunk.position() + t) + ") has a non-finite value (" + row[j] + ") at dimension " + j;
                }
            }
        }
        throw new IllegalArgumentException("every value of " + chunk + " is finite");
    }

    /**
     * {@code Σ x[from + j]²} over {@code j < n}, in double. Four partial sums: one running sum is a chain of dependent
     * additions (one element per add latency), which made the norms 3.6 % of the engine thread at 512-token batches
     * of d_in 2304 (JFR, bench/README.md).
     */
    private static double sumOfSquares(float[] x, int from, int n) {
        int j = from;
        int end = from + n;
        int end4 = from + (n & ~3);
        double s0 = 0;
        double s1 = 0;
        double s2 = 0;
        double s3 = 0;
        for (; j < end4; j += 4) {
            double a = x[j];
            double b = x[j + 1];
            double c = x[j + 2];
            double d = x[j + 3];
            s0 += a * a;
            s1 += b * b;
            s2 += c * c;
            s3 += d * d;
        }
        for (; j < end; j++) {
            s0 += (double) x[j] * x[j];
        }
        return (s0 + s1) + (s2 + s3);
    }
}
