package io.saeguard.detectors.select;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.Random;
import org.junit.jupiter.api.Test;

class LogisticRegressionTest {
    private static final long SEED = System.nanoTime();

    static {
        System.out.println("LogisticRegressionTest seed: " + SEED);
    }

    /** n rows of d columns (column j scaled by j+1 and shifted by j), labels from a noisy linear rule. */
    private record Problem(float[] x, boolean[] y, int n, int d) {
        static Problem random(long seed, int n, int d) {
            Random rnd = new Random(seed);
            float[] x = new float[n * d];
            boolean[] y = new boolean[n];
            double[] truth = new double[d];
            for (int j = 0; j < d; j++) {
                truth[j] = rnd.nextGaussian();
            }
            for (int i = 0; i < n; i++) {
                double z = 0.3;
                for (int j = 0; j < d; j++) {
                    double v = rnd.nextGaussian();
                    x[i * d + j] = (float) (v * (j + 1) + j);
                    z += truth[j] * v;
                }
                y[i] = rnd.nextDouble() < 1 / (1 + Math.exp(-2 * z));
            }
            return new Problem(x, y, n, d);
        }
    }

    /** The objective's gradient w.r.t. the raw-space weights, computed independently from the model's predictions. */
    private static double maxGradient(Problem p, LogisticRegression.Model m, double l2) {
        int n = p.n();
        int d = p.d();
        double[] mu = new double[d];
        double[] sd = new double[d];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < d; j++) {
                mu[j] += p.x()[i * d + j] / (double) n;
            }
        }
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < d; j++) {
                double c = p.x()[i * d + j] - mu[j];
                sd[j] += c * c / n;
            }
        }
        double[] g = new double[d + 1];
        for (int i = 0; i < n; i++) {
            double r = m.probability(p.x(), i) - (p.y()[i] ? 1 : 0);
            for (int j = 0; j < d; j++) {
                g[j] += r * (p.x()[i * d + j] - mu[j]) / Math.sqrt(sd[j]) / n;
            }
            g[d] += r / n;
        }
        double max = 0;
        for (int j = 0; j < d; j++) {
            // standardised weight θ_j = w_j σ_j
            max = Math.max(max, Math.abs(g[j] + l2 * m.weight()[j] * Math.sqrt(sd[j])));
        }
        return Math.max(max, Math.abs(g[d]));
    }

    @Test
    void newtonReachesTheOptimum() {
        // Given
        Problem p = Problem.random(SEED, 400, 5);

        // When
        LogisticRegression.Model m = LogisticRegression.fit(p.x(), p.n(), p.d(), p.y(), LogisticRegression.Options.defaults());

        // Then
        assertThat(maxGradient(p, m, 1e-2)).isLessThan(1e-6);
    }

    @Test
    void gradientDescentAgreesWithNewton() {
        // Given
        Problem p = Problem.random(SEED + 1, 300, 6);
        LogisticRegression.Options newton = LogisticRegression.Options.defaults();

        // When
        LogisticRegression.Model a = LogisticRegression.fit(p.x(), p.n(), p.d(), p.y(), newton);
        LogisticRegression.Model b = LogisticRegression.fit(p.x(), p.n(), p.d(), p.y(), newton.withNewtonMaxDim(0));

        // Then
        assertThat(maxGradient(p, b, 1e-2)).isLessThan(1e-5);
        for (int i = 0; i < p.n(); i++) {
            assertThat(b.probability(p.x(), i)).isCloseTo(a.probability(p.x(), i), within(1e-4));
        }
    }

    @Test
    void fittingIsDeterministic() {
        Problem p = Problem.random(SEED + 2, 200, 4);

        LogisticRegression.Model a = LogisticRegression.fit(p.x(), p.n(), p.d(), p.y(), LogisticRegression.Options.defaults());
        LogisticRegression.Model b = LogisticRegression.fit(p.x(), p.n(), p.d(), p.y(), LogisticRegression.Options.defaults());

        assertThat(b.weight()).containsExactly(a.weight());
        assertThat(b.bias()).isEqualTo(a.bias());
    }

    @Test
    void separableDataIsClassifiedCorrectlyDespiteRegularisation() {
        // Given: y = x₀ > 0, with a constant column (σ = 0) that must not break standardisation
        int n = 100;
        float[] x = new float[n * 2];
        boolean[] y = new boolean[n];
        for (int i = 0; i < n; i++) {
            x[2 * i] = i - 49.5f;
            x[2 * i + 1] = 3f;
            y[i] = i >= 50;
        }

        // When
        LogisticRegression.Model m = LogisticRegression.fit(x, n, 2, y, LogisticRegression.Options.defaults());

        // Then
        for (int i = 0; i < n; i++) {
            assertThat(m.probability(x, i) >= 0.5).isEqualTo(y[i]);
        }
    }
}
