package io.saeguard.sae;

import java.util.Objects;
import java.util.Optional;

/**
 * A base SAE plus a residual SAE trained on the base's reconstruction error ("SAE Boost",
 * arXiv 2507.12990; docs/algorithms.md#composed-saes). Codes are {@code [a_base ; a_res]}: residual feature
 * {@code j} has id {@code base.dSae + j}. The reconstruction is the sum of both.
 *
 * <p>Whether the residual SAE reads the input {@code x} or the error {@code x − x̂_base} is not
 * settled by the paper's public material, so it is configuration ({@link ResidualInput}).
 */
public final class ComposedSae implements Sae {
    /** What the residual SAE encodes. */
    public enum ResidualInput {
        /** {@code e = x − x̂_base}. */
        ERROR,
        /** {@code x} itself. */
        INPUT
    }

    private final SaeConfig config;
    private final SingleSae base;
    private final SingleSae residual;
    private final ResidualInput residualInput;

    public ComposedSae(SaeConfig config, SingleSae base, SingleSae residual, ResidualInput residualInput)
            throws SaeFormatException {
        this.config = Objects.requireNonNull(config, "config");
        this.base = base;
        this.residual = residual;
        this.residualInput = residualInput;
        if (base.config().dIn() != residual.config().dIn()) {
            throw new SaeFormatException(config.path() + ": base d_in " + base.config().dIn() + " differs from residual d_in "
                    + residual.config().dIn());
        }
        if (config.dSae() != base.config().dSae() + residual.config().dSae()) {
            throw new SaeFormatException(config.path() + ": composed d_sae must be base + residual");
        }
    }

    @Override
    public SaeConfig config() {
        return config;
    }

    public SingleSae base() {
        return base;
    }

    public SingleSae residual() {
        return residual;
    }

    public ResidualInput residualInput() {
        return residualInput;
    }

    @Override
    public Optional<float[]> baselineDensity() {
        Optional<float[]> b = base.baselineDensity();
        Optional<float[]> r = residual.baselineDensity();
        if (b.isEmpty() || r.isEmpty()) {
            return Optional.empty();
        }
        float[] out = new float[config.dSae()];
        System.arraycopy(b.get(), 0, out, 0, b.get().length);
        System.arraycopy(r.get(), 0, out, b.get().length, r.get().length);
        return Optional.of(out);
    }

    @Override
    public void decoderRow(int f, float[] dst) {
        int nb = base.config().dSae();
        if (f < nb) {
            base.decoderRow(f, dst);
        } else {
            residual.decoderRow(f - nb, dst);
        }
    }
}
