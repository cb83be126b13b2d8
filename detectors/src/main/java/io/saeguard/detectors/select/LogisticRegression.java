package io.saeguard.detectors.select;

import java.util.Objects;

/**
 * Plain L2-regularised logistic regression, deterministic, in Java: the raw-activation probe baseline
 * of the sparse-probing paper (docs/algorithms.md#held-out-evaluation: scikit-learn {@code LogisticRegression}, L2 penalty).
 *
 * <p>Minimises {@code (1/n) Σ_i log(1 + exp(-y'_i (w·z_i + b))) + (λ/2)‖w‖²} over standardised inputs
 * {@code z = (x − μ)/σ} (per column, σ floored at 1e-8; the bias is not penalised), then folds the
 * standardisation back so the returned model applies to raw inputs. Newton's method (Cholesky on the
 * {@code (d+1)²} Hessian) when {@code d ≤ newtonMaxDim}; otherwise Nesterov-accelerated gradient
 * descent with step {@code 1/L}, {@code L} the smoothness bound from a power iteration on
 * {@code ZᵀZ/n}. Both start from zero and use no randomness, so a fit is reproducible bit for bit.
 */
public final class LogisticRegression {
    private LogisticRegression() {}

    /**
     * Fitting options.
     *
     * @param l2           λ, the L2 penalty on the standardised weights, {@code >= 0}
     * @param newtonMaxDim use Newton's method up to this many inputs
     * @param maxIterations iteration cap (Newton steps or gradient steps)
     * @param tolerance    stop when the gradient's max-norm falls below this
     */
    public record Options(double l2, int newtonMaxDim, int maxIterations, double tolerance) {
        public Options {
            if (!(l2 >= 0) || maxIterations < 1 || !(tolerance > 0)) {
                throw new IllegalArgumentException("l2 >= 0, maxIterations >= 1 and tolerance > 0 are required");
            }
        }

        /** λ = 1e-2, Newton up to 512 inputs (50 steps), else 2000 gradient steps; tolerance 1e-8. */
        public static Options defaults() {
            return new Options(1e-2, 512, 2000, 1e-8);
        }

        public Options withL2(double lambda) {
            return new Options(lambda, newtonMaxDim, maxIterations, tolerance);
        }

        public Options withNewtonMaxDim(int dim) {
            return new Options(l2, dim, maxIterations, tolerance);
        }
    }

    /**
     * A fitted model over raw inputs: {@code p(x) = σ(bias + weight · x)}.
     *
     * @param weight     length d
     * @param bias       the intercept
     * @param iterations iterations used
     */
    public record Model(double[] weight, double bias, int iterations) {
        public Model {
            Objects.requireNonNull(weight, "weight");
        }

        /** The probability of row {@code row} of a row-major {@code [n, d]} matrix. */
        public double probability(float[] x, int row) {
            int d = weight.length;
            double z = bias;
            int base = row * d;
            for (int j = 0; j < d; j++) {
                z += weight[j] * x[base + j];
            }
            return sigmoid(z);
        }

        /** The weights as floats, e.g. for a raw-probe weights file. */
        public float[] weightsAsFloats() {
            float[] w = new float[weight.length];
            for (int j = 0; j < w.length; j++) {
                w[j] = (float) weight[j];
            }
            return w;
        }
    }

    /**
     * Fits a model.
     *
     * @param x      row-major {@code [n, d]} inputs
     * @param n      rows
     * @param d      columns
     * @param labels per row, true = positive
     */
    public static Model fit(float[] x, int n, int d, boolean[] labels, Options options) {
        if (x.length != (long) n * d || labels.length != n || n == 0 || d == 0) {
            throw new IllegalArgumentException("need n >= 1 rows of d >= 1 columns and one label per row: x has "
                    + x.length + " values for " + n + " x " + d + ", " + labels.length + " labels");
        }
        // μ, σ per column: x: [n, d]
        double[] mu = new double[d];
        double[] sigma = new double[d];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < d; j++) {
                mu[j] += x[i * d + j];
            }
        }
        for (int j = 0; j < d; j++) {
            mu[j] /= n;
        }
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < d; j++) {
                double c = x[i * d + j] - mu[j];
                sigma[j] += c * c;
            }
        }
        for (int j = 0; j < d; j++) {
            sigma[j] = Math.max(Math.sqrt(sigma[j] / n), 1e-8);
        }
        Standardised z = new Standardised(x, n, d, mu, sigma);
        double[] theta = new double[d + 1]; // [w_0 .. w_{d-1}, b]
        int iterations = d <= options.newtonMaxDim()
                ? newton(z, labels, options, theta)
                : gradientDescent(z, labels, options, theta);
        double[] w = new double[d];
        double b = theta[d];
        for (int j = 0; j < d; j++) {
            w[j] = theta[j] / sigma[j];
            b -= theta[j] * mu[j] / sigma[j];
        }
        return new Model(w, b, iterations);
    }

    /** Standardised view of the inputs, computed on the fly (no copy of x). */
    private record Standardised(float[] x, int n, int d, double[] mu, double[] sigma) {
        double at(int i, int j) {
            return (x[i * d + j] - mu[j]) / sigma[j];
        }

        double logit(int i, double[] theta) {
            double s = theta[d];
            for (int j = 0; j < d; j++) {
                s += theta[j] * at(i, j);
            }
            return s;
        }
    }

    static double sigmoid(double z) {
        if (z >= 0) {
            return 1.0 / (1.0 + Math.exp(-z));
        }
        double e = Math.exp(z);
        return e / (1.0 + e);
    }

    /** Gradient of the objective at theta into g; returns its max-norm. */
    private static double gradient(Standardised z, boolean[] y, double l2, double[] theta, double[] g) {
        int n = z.n();
        int d = z.d();
        java.util.Arrays.fill(g, 0);
        for (int i = 0; i < n; i++) {
            double r = sigmoid(z.logit(i, theta)) - (y[i] ? 1 : 0);
            for (int j = 0; j < d; j++) {
                g[j] += r * z.at(i, j);
            }
            g[d] += r;
        }
        double maxAbs = 0;
        for (int j = 0; j <= d; j++) {
            g[j] /= n;
            if (j < d) {
                g[j] += l2 * theta[j];
            }
            maxAbs = Math.max(maxAbs, Math.abs(g[j]));
        }
        return maxAbs;
    }

    private static int newton(Standardised z, boolean[] y, Options o, double[] theta) {
        int n = z.n();
        int d = z.d();
        int m = d + 1;
        double[] g = new double[m];
        double[][] h = new double[m][m];
        double[] row = new double[m];
        int it = 0;
        for (; it < Math.min(o.maxIterations(), 100); it++) {
            if (gradient(z, y, o.l2(), theta, g) < o.tolerance()) {
                break;
            }
            for (double[] r : h) {
                java.util.Arrays.fill(r, 0);
            }
            for (int i = 0; i < n; i++) {
                double p = sigmoid(z.logit(i, theta));
                double s = p * (1 - p);
                for (int j = 0; j < d; j++) {
                    row[j] = z.at(i, j);
                }
                row[d] = 1;
                for (int a = 0; a < m; a++) {
                    double sa = s * row[a];
                    for (int b = 0; b <= a; b++) {
                        h[a][b] += sa * row[b];
                    }
                }
            }
            for (int a = 0; a < m; a++) {
                for (int b = 0; b <= a; b++) {
                    h[a][b] /= n;
                }
                h[a][a] += a < d ? o.l2() : 1e-10;
            }
            double[] step = choleskySolve(h, g);
            for (int j = 0; j < m; j++) {
                theta[j] -= step[j];
            }
        }
        return it;
    }

    /** Solves H s = g for symmetric positive definite H given by its lower triangle (overwritten). */
    private static double[] choleskySolve(double[][] h, double[] g) {
        int m = g.length;
        for (int j = 0; j < m; j++) {
            double s = h[j][j];
            for (int k = 0; k < j; k++) {
                s -= h[j][k] * h[j][k];
            }
            double diag = Math.sqrt(Math.max(s, 1e-12));
            h[j][j] = diag;
            for (int i = j + 1; i < m; i++) {
                double t = h[i][j];
                for (int k = 0; k < j; k++) {
                    t -= h[i][k] * h[j][k];
                }
                h[i][j] = t / diag;
            }
        }
        double[] v = new double[m];
        for (int i = 0; i < m; i++) {
            double t = g[i];
            for (int k = 0; k < i; k++) {
                t -= h[i][k] * v[k];
            }
            v[i] = t / h[i][i];
        }
        for (int i = m - 1; i >= 0; i--) {
            double t = v[i];
            for (int k = i + 1; k < m; k++) {
                t -= h[k][i] * v[k];
            }
            v[i] = t / h[i][i];
        }
        return v;
    }

    private static int gradientDescent(Standardised z, boolean[] y, Options o, double[] theta) {
        int m = z.d() + 1;
        // L ≤ λ_max([Z 1]ᵀ[Z 1] / n) / 4 + λ; λ_max by power iteration from the all-ones vector.
        double lipschitz = powerIteration(z) / 4 + o.l2();
        double step = 1 / lipschitz;
        double[] g = new double[m];
        double[] previous = theta.clone();
        double[] look = theta.clone();
        int it = 0;
        for (; it < o.maxIterations(); it++) {
            if (gradient(z, y, o.l2(), look, g) < o.tolerance()) {
                System.arraycopy(look, 0, theta, 0, m);
                break;
            }
            double momentum = it / (it + 3.0);
            for (int j = 0; j < m; j++) {
                double next = look[j] - step * g[j];
                look[j] = next + momentum * (next - previous[j]);
                previous[j] = next;
                theta[j] = next;
            }
        }
        return it;
    }

    private static double powerIteration(Standardised z) {
        int n = z.n();
        int d = z.d();
        double[] v = new double[d + 1];
        java.util.Arrays.fill(v, 1 / Math.sqrt(d + 1));
        double lambda = 1;
        for (int k = 0; k < 30; k++) {
            double[] u = new double[d + 1];
            for (int i = 0; i < n; i++) {
                double s = v[d];
                for (int j = 0; j < d; j++) {
                    s += z.at(i, j) * v[j];
                }
                for (int j = 0; j < d; j++) {
                    u[j] += s * z.at(i, j);
                }
                u[d] += s;
            }
            double norm = 0;
            for (int j = 0; j <= d; j++) {
                u[j] /= n;
                norm += u[j] * u[j];
            }
            norm = Math.sqrt(norm);
            if (norm == 0) {
                return 1;
            }
            lambda = norm;
            for (int j = 0; j <= d; j++) {
                v[j] = u[j] / norm;
            }
        }
        return lambda * 1.05; // a margin: the iteration approaches λ_max from below
    }
}
