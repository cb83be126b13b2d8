package io.saeguard.sae.compare;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.saeguard.sae.TestSeed;
import java.util.Random;
import org.junit.jupiter.api.Test;

class FeatureMatchingTest {
    private static final int TOKENS = 400;
    private static final int D_IN = 16;
    private static final int D_SAE = 48;

    /** Random non-negative sparse codes: each feature fires on about a fifth of the tokens. */
    private static float[] codes(Random rnd, int tokens, int width) {
        float[] c = new float[tokens * width];
        for (int i = 0; i < c.length; i++) {
            if (rnd.nextDouble() < 0.2) {
                c[i] = (float) (0.1 + rnd.nextDouble() * 3);
            }
        }
        return c;
    }

    private static float[] gaussian(Random rnd, int n) {
        float[] w = new float[n];
        for (int i = 0; i < n; i++) {
            w[i] = (float) rnd.nextGaussian();
        }
        return w;
    }

    /** B's feature perm[i] is A's feature i: columns of codes, rows of the decoder, B's row scaled by 2 (cosine and Pearson ignore scale). */
    private static float[] permuteColumns(float[] codes, int tokens, int width, int[] perm) {
        float[] out = new float[codes.length];
        for (int t = 0; t < tokens; t++) {
            for (int i = 0; i < width; i++) {
                out[t * width + perm[i]] = 2 * codes[t * width + i];
            }
        }
        return out;
    }

    @Test
    void anIdenticalSaeMatchesEveryFeatureToItselfWithPwMccOne() {
        // Given
        Random rnd = new Random(TestSeed.draw("anIdenticalSaeMatchesEveryFeatureToItselfWithPwMccOne"));
        float[] dec = gaussian(rnd, D_SAE * D_IN);
        float[] c = codes(rnd, TOKENS, D_SAE);
        SparseRows rows = new SparseRows.Builder(D_SAE).addDense(c, TOKENS).build();

        // When
        FeatureMatch byCosine = DecoderMatching.best(dec, D_SAE, dec, D_SAE, D_IN);
        FeatureMatch byCorrelation = ActivationCorrelation.best(rows, rows);

        // Then
        for (int i = 0; i < D_SAE; i++) {
            assertThat(byCosine.best()[i]).isEqualTo(i);
            assertThat(byCorrelation.best()[i]).isEqualTo(i);
        }
        assertThat(byCosine.mean()).isCloseTo(1.0, within(1e-6));
        assertThat(byCorrelation.mean()).isCloseTo(1.0, within(1e-9));
        assertThat(byCosine.atLeast(0.9)).isEqualTo(D_SAE);
    }

    @Test
    void aPermutedScaledCopyIsMatchedBackToThePermutation() {
        // Given B = A with its features permuted and scaled
        Random rnd = new Random(TestSeed.draw("aPermutedScaledCopyIsMatchedBackToThePermutation"));
        float[] decA = gaussian(rnd, D_SAE * D_IN);
        float[] codesA = codes(rnd, TOKENS, D_SAE);
        int[] perm = Permutations.random(rnd, D_SAE);
        float[] decB = new float[decA.length];
        for (int i = 0; i < D_SAE; i++) {
            for (int k = 0; k < D_IN; k++) {
                decB[perm[i] * D_IN + k] = 2 * decA[i * D_IN + k];
            }
        }
        float[] codesB = permuteColumns(codesA, TOKENS, D_SAE, perm);

        // When
        FeatureMatch byCosine = DecoderMatching.best(decA, D_SAE, decB, D_SAE, D_IN);
        FeatureMatch byCorrelation = ActivationCorrelation.best(new SparseRows.Builder(D_SAE).addDense(codesA, TOKENS).build(),
                new SparseRows.Builder(D_SAE).addDense(codesB, TOKENS).build());

        // Then
        assertThat(byCosine.best()).containsExactly(perm);
        assertThat(byCorrelation.best()).containsExactly(perm);
        assertThat(byCorrelation.mean()).isCloseTo(1.0, within(1e-9));
        assertThat(DecoderMatching.cosine(decA, 0, decB, perm[0], D_IN)).isCloseTo(1.0, within(1e-6));
    }

    @Test
    void correlationsEqualADirectTwoPassPearsonOnRandomCodes() {
        // Given two unrelated random code matrices, with a block size that forces several blocks
        Random rnd = new Random(TestSeed.draw("correlationsEqualADirectTwoPassPearsonOnRandomCodes"));
        int dB = 37;
        float[] a = codes(rnd, TOKENS, D_SAE);
        float[] b = codes(rnd, TOKENS, dB);
        for (int t = 0; t < TOKENS; t++) {
            a[t * D_SAE + 5] = 0; // feature 5 of A is dead: no match
            b[t * dB + 3] = a[t * D_SAE + 7] * 0.5f + (t % 2 == 0 ? 0.1f : 0); // B's 3 follows A's 7 closely
        }

        // When
        FeatureMatch m = ActivationCorrelation.best(new SparseRows.Builder(D_SAE).addDense(a, TOKENS).build(),
                new SparseRows.Builder(dB).addDense(b, TOKENS).build(), 5 * dB);

        // Then every best match and its correlation are the direct computation's (float64, two passes), within 1e-9
        for (int i = 0; i < D_SAE; i++) {
            if (i == 5) {
                assertThat(m.best()[i]).isEqualTo(-1);
                continue;
            }
            int arg = -1;
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < dB; j++) {
                double r = pearson(a, D_SAE, i, b, dB, j);
                if (r > max) {
                    max = r;
                    arg = j;
                }
            }
            assertThat(m.best()[i]).as("best B feature of A's %d", i).isEqualTo(arg);
            assertThat(m.score()[i]).as("correlation of A's %d", i).isCloseTo(max, within(1e-9));
        }
        assertThat(m.best()[7]).isEqualTo(3);
        assertThat(m.matched()).isEqualTo(D_SAE - 1);
    }

    private static double pearson(float[] a, int dA, int i, float[] b, int dB, int j) {
        double ma = 0;
        double mb = 0;
        for (int t = 0; t < TOKENS; t++) {
            ma += a[t * dA + i];
            mb += b[t * dB + j];
        }
        ma /= TOKENS;
        mb /= TOKENS;
        double cov = 0;
        double va = 0;
        double vb = 0;
        for (int t = 0; t < TOKENS; t++) {
            double x = a[t * dA + i] - ma;
            double y = b[t * dB + j] - mb;
            cov += x * y;
            va += x * x;
            vb += y * y;
        }
        return cov / Math.sqrt(va * vb);
    }
}
