package io.saeguard.sae.format;

import io.saeguard.sae.Architecture;
import io.saeguard.sae.Normalization;
import io.saeguard.sae.SaeConfig;
import io.saeguard.sae.SaeFormat;
import io.saeguard.sae.SaeFormatException;
import io.saeguard.sae.SingleSae;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * Gemma Scope 1: {@code params.npz} with {@code W_enc [d_model, d_sae]}, {@code W_dec [d_sae, d_model]},
 * {@code b_enc}, {@code b_dec}, {@code threshold}. JumpReLU, no {@code b_dec} subtraction, no
 * normalisation, no config file: the sizes come from the bias vectors, the hook and model from the
 * sidecar config.
 */
final class GemmaScopeFormat {
    private GemmaScopeFormat() {
    }

    static SingleSae load(Path npz) throws SaeFormatException {
        WeightFile w;
        try {
            w = NpzReader.read(npz);
        } catch (IOException e) {
            throw SaeFormatException.in(npz, "cannot read: " + e);
        }
        int dSae = Math.toIntExact(w.requireRaw("b_enc").elementCount());
        int dIn = Math.toIntExact(w.requireRaw("b_dec").elementCount());
        SaeConfig config = new SaeConfig(npz, SaeFormat.GEMMA_SCOPE, Architecture.JUMPRELU, dIn, dSae,
                OptionalInt.empty(), false, Normalization.NONE, 1, 1, false, w.storedDtype(), Optional.empty(), Optional.empty(),
                List.of(npz));
        return new SingleSae(config, w.matrix("W_enc", dIn, dSae, false), Optional.of(w.vector("b_enc", dSae)),
                w.matrix("W_dec", dSae, dIn, false), w.vector("b_dec", dIn), Optional.of(w.vector("threshold", dSae)),
                Optional.empty(), Optional.empty(), Optional.empty(), Optional.empty());
    }
}
