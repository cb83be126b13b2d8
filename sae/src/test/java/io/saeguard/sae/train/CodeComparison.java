package io.saeguard.sae.train;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Compares SAE outputs row by row, relative to the row's magnitude (F32 rounding scales with the
 * values the GEMM produced), as {@code SaeEquivalenceIT} does.
 */
final class CodeComparison {
    /** Decision values within this fraction of the row's scale from the cut count as ties. */
    static final double TIE = 1e-6;

    private CodeComparison() {
    }

    /**
     * Codes {@code [n, f]} agree within {@code tolerance} of each row's largest decision value, and
     * the same latents are active. A row where some decision value {@code pre} lies within
     * {@link #TIE} of the cut it was compared with (other than the cut itself, which for top-k is
     * the k-th value) is a near-tie: its latents at the cut may legitimately differ and are skipped.
     */
    static void assertSame(String what, float[] got, float[] want, float[] pre, float[] cut, int n, int f, double tolerance) {
        assertThat(got).as(what).hasSameSizeAs(want);
        int tiedRows = 0;
        for (int t = 0; t < n; t++) {
            double scale = 1;
            boolean tied = false;
            for (int j = 0; j < f; j++) {
                scale = Math.max(scale, Math.abs(pre[t * f + j]));
            }
            for (int j = 0; j < f; j++) {
                double gap = Math.abs(pre[t * f + j] - cut[t * f + j]);
                tied |= gap > 0 && gap <= TIE * scale;
            }
            if (tied) {
                tiedRows++;
            }
            for (int j = 0; j < f; j++) {
                int i = t * f + j;
                if (tied && Math.abs(pre[i] - cut[i]) <= TIE * scale) {
                    continue;
                }
                assertThat(got[i] != 0).as("%s: row %d latent %d active", what, t, j).isEqualTo(want[i] != 0);
                assertThat((double) Math.abs(got[i] - want[i])).as("%s: row %d latent %d (%s vs %s)", what, t, j, got[i], want[i])
                        .isLessThanOrEqualTo(tolerance * scale);
            }
        }
        assertThat(tiedRows).as("%s: rows with near-ties", what).isLessThanOrEqualTo(n / 100 + 1);
    }

    /** Rows {@code [n, d]} agree within {@code tolerance} of each row's largest reference value. */
    static void assertClose(String what, float[] got, float[] want, int n, int d, double tolerance) {
        assertThat(got).as(what).hasSameSizeAs(want);
        for (int t = 0; t < n; t++) {
            double scale = 1;
            for (int j = 0; j < d; j++) {
                scale = Math.max(scale, Math.abs(want[t * d + j]));
            }
            for (int j = 0; j < d; j++) {
                assertThat((double) Math.abs(got[t * d + j] - want[t * d + j])).as("%s: row %d dim %d", what, t, j)
                        .isLessThanOrEqualTo(tolerance * scale);
            }
        }
    }
}
