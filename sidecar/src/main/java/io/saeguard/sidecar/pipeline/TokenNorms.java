package io.saeguard.sidecar.pipeline;

/** L2 norm of each token's activation vector: detectors scale clamp values by it. */
public final class TokenNorms {
    private TokenNorms() {
    }

    /** Norms of the rows of {@code x} ({@code [tokens, dIn]}, row-major). */
    public static float[] of(float[] x, int tokens, int dIn) {
        float[] out = new float[tokens];
        for (int t = 0; t < tokens; t++) {
            double s = 0;
            for (int j = t * dIn; j < (t + 1) * dIn; j++) {
                s += (double) x[j] * x[j];
            }
            out[t] = (float) Math.sqrt(s);
        }
        return out;
    }
}
