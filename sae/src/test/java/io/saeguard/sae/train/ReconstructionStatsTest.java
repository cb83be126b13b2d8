package io.saeguard.sae.train;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.Random;
import org.junit.jupiter.api.Test;

class ReconstructionStatsTest {
    @Test
    void fvuOverSeveralBatchesEqualsTheDirectFormulaOverAllRows() {
        // Given 50 rows of width 3 with a large common offset, their reconstructions and codes, in batches of 7
        Random r = new Random(1);
        int n = 50;
        int d = 3;
        float[] x = new float[n * d];
        float[] xHat = new float[n * d];
        float[] codes = new float[n * 4];
        for (int i = 0; i < n * d; i++) {
            x[i] = 100 + (float) r.nextGaussian();
            xHat[i] = x[i] + 0.1f * (float) r.nextGaussian();
        }
        for (int t = 0; t < n; t++) {
            codes[t * 4 + t % 3] = 1f; // latent 3 never fires
        }
        ReconstructionStats stats = new ReconstructionStats(d, 4);
        for (int start = 0; start < n; start += 7) {
            int m = Math.min(7, n - start);
            stats.add(java.util.Arrays.copyOfRange(x, start * d, (start + m) * d), java.util.Arrays.copyOfRange(xHat, start * d, (start + m) * d),
                    java.util.Arrays.copyOfRange(codes, start * 4, (start + m) * 4), m);
        }

        // When the quality is read
        ReconstructionQuality q = stats.quality();

        // Then FVU is Σ‖x − x̂‖² / Σ‖x − mean‖² with the mean over all rows, L0 is 1, one latent is dead
        double[] mean = new double[d];
        for (int t = 0; t < n; t++) {
            for (int j = 0; j < d; j++) {
                mean[j] += x[t * d + j] / (double) n;
            }
        }
        double err = 0;
        double var = 0;
        for (int t = 0; t < n; t++) {
            for (int j = 0; j < d; j++) {
                err += Math.pow(x[t * d + j] - xHat[t * d + j], 2);
                var += Math.pow(x[t * d + j] - mean[j], 2);
            }
        }
        assertThat(q.rows()).isEqualTo(n);
        assertThat(q.fvu()).isCloseTo(err / var, within(1e-9));
        assertThat(q.l0()).isEqualTo(1.0);
        assertThat(q.deadLatents()).isEqualTo(1);
        assertThat(stats.fires()).containsExactly(17, 17, 16, 0);
    }

    @Test
    void densityIsSaeLensLog10WithAFloorForLatentsThatNeverFired() {
        ReconstructionStats stats = new ReconstructionStats(1, 2);
        stats.addReduced(1000, new double[] {0}, 1, 0, 10, new long[] {10, 0});

        assertThat(stats.log10Density()[0]).isCloseTo(-2f, within(1e-6f));
        assertThat(stats.log10Density()[1]).isCloseTo(-10f, within(1e-6f));
    }
}
