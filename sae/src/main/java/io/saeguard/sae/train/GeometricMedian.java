package io.saeguard.sae.train;

/**
 * The geometric median of a set of rows (the point minimising the sum of Euclidean distances), by
 * Weiszfeld's iteration. sparsify and SAELens initialise {@code b_dec} with it: unlike the mean it
 * is not dragged by the few huge-norm tokens (attention sinks) residual streams carry.
 */
final class GeometricMedian {
    private GeometricMedian() {
    }

    /**
     * @param rows row-major {@code [n, d]}
     * @param maxIterations Weiszfeld steps at most
     * @param tolerance stop when a step moves the estimate by less than this times its distance scale
     */
    static float[] of(float[] rows, int n, int d, int maxIterations, double tolerance) {
        if (n < 1) {
            throw new IllegalArgumentException("no rows");
        }
        double[] y = new double[d];
        for (int r = 0; r < n; r++) {
            for (int j = 0; j < d; j++) {
                y[j] += rows[r * d + j];
            }
        }
        for (int j = 0; j < d; j++) {
            y[j] /= n;
        }
        double[] next = new double[d];
        for (int it = 0; it < maxIterations; it++) {
            java.util.Arrays.fill(next, 0);
            double weights = 0;
            double meanDistance = 0;
            for (int r = 0; r < n; r++) {
                double dist = 0;
                for (int j = 0; j < d; j++) {
                    double diff = rows[r * d + j] - y[j];
                    dist += diff * diff;
                }
                dist = Math.sqrt(dist);
                meanDistance += dist / n;
                // A row sitting on the estimate would get infinite weight; the floor keeps the step defined.
                double w = 1 / Math.max(dist, 1e-12);
                weights += w;
                for (int j = 0; j < d; j++) {
                    next[j] += w * rows[r * d + j];
                }
            }
            double shift = 0;
            for (int j = 0; j < d; j++) {
                double v = next[j] / weights;
                shift += (v - y[j]) * (v - y[j]);
                y[j] = v;
            }
            if (Math.sqrt(shift) <= tolerance * Math.max(meanDistance, 1e-30)) {
                break;
            }
        }
        float[] out = new float[d];
        for (int j = 0; j < d; j++) {
            out[j] = (float) y[j];
        }
        return out;
    }
}
