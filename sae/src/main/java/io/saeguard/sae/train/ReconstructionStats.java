package io.saeguard.sae.train;

/**
 * Accumulates {@link ReconstructionQuality} and per-latent firing counts over batches. Batches
 * arrive either as heap arrays ({@link #add}) or already reduced on the device
 * ({@link #addReduced}); sums are kept in double.
 *
 * <p>Not thread-safe.
 */
public final class ReconstructionStats {
    private final int dIn;
    private final long[] fires;
    private final double[] sumX;
    private double sumSquares;
    private double sumSquaredError;
    private long active;
    private long rows;

    public ReconstructionStats(int dIn, int dSae) {
        this.dIn = dIn;
        this.fires = new long[dSae];
        this.sumX = new double[dIn];
    }

    /**
     * Adds {@code rows} rows: inputs {@code x} and reconstructions {@code xHat} {@code [rows, d_in]},
     * dense codes {@code [rows, d_sae]}.
     */
    public void add(float[] x, float[] xHat, float[] codes, int n) {
        int dSae = fires.length;
        double[] batchSum = new double[dIn];
        double squares = 0;
        double error = 0;
        for (int r = 0; r < n; r++) {
            for (int j = 0; j < dIn; j++) {
                double v = x[r * dIn + j];
                batchSum[j] += v;
                squares += v * v;
                double e = v - xHat[r * dIn + j];
                error += e * e;
            }
        }
        long[] batchFires = new long[dSae];
        long batchActive = 0;
        for (int r = 0; r < n; r++) {
            for (int f = 0; f < dSae; f++) {
                if (codes[r * dSae + f] != 0f) {
                    batchFires[f]++;
                    batchActive++;
                }
            }
        }
        addReduced(n, batchSum, squares, error, batchActive, batchFires);
    }

    /**
     * Adds a batch reduced elsewhere: per-dimension sums of {@code x}, {@code Σx²}, {@code Σ(x − x̂)²},
     * the number of non-zero codes and the rows each latent fired on.
     */
    public void addReduced(long n, double[] batchSumX, double squares, double squaredError, long nonZeroCodes, long[] firesPerLatent) {
        if (batchSumX.length != dIn || firesPerLatent.length != fires.length) {
            throw new IllegalArgumentException("expected " + dIn + " sums and " + fires.length + " fire counts, got "
                    + batchSumX.length + " and " + firesPerLatent.length);
        }
        for (int j = 0; j < dIn; j++) {
            sumX[j] += batchSumX[j];
        }
        for (int f = 0; f < fires.length; f++) {
            fires[f] += firesPerLatent[f];
        }
        sumSquares += squares;
        sumSquaredError += squaredError;
        active += nonZeroCodes;
        rows += n;
    }

    public long rows() {
        return rows;
    }

    /** Rows each latent fired on; a copy. */
    public long[] fires() {
        return fires.clone();
    }

    /**
     * SAELens' {@code sparsity.safetensors} values: {@code log10(fires / rows + 1e-10)} per latent
     * (SAELens adds 1e-10 so a latent that never fired gets -10, not -∞).
     */
    public float[] log10Density() {
        float[] out = new float[fires.length];
        for (int f = 0; f < fires.length; f++) {
            out[f] = (float) Math.log10((double) fires[f] / Math.max(1, rows) + 1e-10);
        }
        return out;
    }

    /** The quality so far; FVU is NaN when the rows have no variance. */
    public ReconstructionQuality quality() {
        double meanSquares = 0;
        for (double s : sumX) {
            meanSquares += s * s;
        }
        double totalVariance = sumSquares - (rows == 0 ? 0 : meanSquares / rows);
        int dead = 0;
        for (long f : fires) {
            if (f == 0) {
                dead++;
            }
        }
        double fvu = totalVariance > 0 ? sumSquaredError / totalVariance : Double.NaN;
        return new ReconstructionQuality(rows, fvu, rows == 0 ? 0 : (double) active / rows, dead);
    }
}
