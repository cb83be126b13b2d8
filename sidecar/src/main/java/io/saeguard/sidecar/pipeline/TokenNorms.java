package io.saeguard.sidecar.pipeline;

/** L2 norm of each token's activation vector: detectors scale clamp values by it. */
public final class TokenNorms {
    private TokenNorms() {
    }

    /**
     * Norms of the rows of {@code x} ({@code [tokens, dIn]}, row-major), summed in double. Four partial sums
     * per row: one running sum is a chain of dependent additions (one element per add latency), which made
     * this 3.6 % of the engine thread at 512-token batches of d_in 2304 (JFR, bench/README.md).
     */
    public static float[] of(float[] x, int tokens, int dIn) {
        float[] out = new float[tokens];
        for (int t = 0; t < tokens; t++) {
            int j = t * dIn;
            int end = j + dIn;
            int end4 = j + (dIn & ~3);
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
            out[t] = (float) Math.sqrt((s0 + s1) + (s2 + s3));
        }
        return out;
    }
}
