package io.saeguard.sae.train;

import io.saeguard.sae.SaeInputException;
import io.saeguard.sae.engine.DeviceSae;
import java.io.IOException;
import java.util.OptionalLong;

/**
 * A base SAE's reconstruction error {@code e = x − x̂_base(x)} over another source's rows: what a
 * residual SAE trains on ("SAE Boost", arXiv 2507.12990; docs/algorithms.md#composed-saes). The base
 * reconstruction comes from the runtime ({@link DeviceSae#reconstruct}), so the residual learns
 * exactly the error the composed SAE will see at inference.
 *
 * <p>Must be used on the thread that owns the base's {@code SaeEngine}. Closing it closes neither
 * the wrapped source nor the base.
 */
public final class ResidualActivationSource implements ActivationSource {
    private final ActivationSource inner;
    private final DeviceSae base;

    /**
     * @throws ActivationDataException when the source's width differs from the base's {@code d_in}
     */
    public ResidualActivationSource(ActivationSource inner, DeviceSae base) throws ActivationDataException {
        this.inner = inner;
        this.base = base;
        if (inner.dIn() != base.config().dIn()) {
            throw new ActivationDataException(inner.describe() + ": rows have d_in " + inner.dIn() + " but the base SAE at "
                    + base.config().path() + " expects d_in " + base.config().dIn());
        }
    }

    @Override
    public int dIn() {
        return inner.dIn();
    }

    @Override
    public OptionalLong rows() {
        return inner.rows();
    }

    @Override
    public String describe() {
        return inner.describe() + " minus the reconstruction of " + base.config().path();
    }

    @Override
    public Pass pass(long seed) throws IOException {
        Pass p = inner.pass(seed);
        int d = inner.dIn();
        return new Pass() {
            @Override
            public int next(float[] dst, int maxRows) throws IOException {
                int m = p.next(dst, maxRows);
                if (m == 0) {
                    return 0;
                }
                float[] recon;
                try {
                    recon = base.reconstruct(dst, m);
                } catch (SaeInputException e) {
                    throw new ActivationDataException(inner.describe() + ": " + e.getMessage(), e);
                }
                for (int i = 0; i < m * d; i++) {
                    dst[i] -= recon[i];
                }
                return m;
            }

            @Override
            public void close() throws IOException {
                p.close();
            }
        };
    }

    @Override
    public void close() {
    }
}
