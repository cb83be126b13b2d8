package io.saeguard.sae.format;

import io.saeguard.sae.Architecture;
import io.saeguard.sae.Normalization;
import io.saeguard.sae.SaeConfig;
import io.saeguard.sae.SaeFormat;
import io.saeguard.sae.SaeFormatException;
import io.saeguard.sae.SingleSae;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * Gemma Scope 2: {@code params.safetensors} with lowercase {@code w_enc [d_in, width]},
 * {@code w_dec [width, d_in]}, {@code b_enc}, {@code b_dec}, {@code threshold}, and {@code config.json}
 * ({@code width}, {@code architecture: jump_relu}, {@code type}, {@code hf_hook_point_in},
 * {@code model_name}). JumpReLU without {@code b_dec} subtraction. Transcoders and affine-skip
 * variants are rejected: their reconstruction needs tensors this runtime does not apply.
 */
final class GemmaScope2Format {
    private GemmaScope2Format() {
    }

    static SingleSae load(Path dir) throws SaeFormatException {
        JsonConfig cfg = JsonConfig.read(dir.resolve("config.json"));
        String arch = cfg.optionalString("architecture").orElse("jump_relu");
        if (!arch.equals("jump_relu") && !arch.equals("jumprelu")) {
            throw SaeFormatException.in(cfg.file(), "unsupported architecture '" + arch + "' (supported: jump_relu)");
        }
        String type = cfg.optionalString("type").orElse("sae");
        if (!type.equals("sae")) {
            throw SaeFormatException.in(cfg.file(), "type '" + type + "' is not supported (only 'sae'; transcoders map one hook to another)");
        }
        if (cfg.bool("affine_connection", false)) {
            throw SaeFormatException.in(cfg.file(), "affine_connection: true is not supported yet");
        }
        Path weights = dir.resolve("params.safetensors");
        WeightFile w = SaeLoader.safetensors(weights);
        int dIn = Math.toIntExact(w.requireRaw("b_dec").elementCount());
        int dSae = cfg.optionalInt("width").orElse(Math.toIntExact(w.requireRaw("b_enc").elementCount()));
        SaeConfig config = new SaeConfig(dir, SaeFormat.GEMMA_SCOPE_2, Architecture.JUMPRELU, dIn, dSae, OptionalInt.empty(), false,
                Normalization.NONE, 1, 1, false, w.storedDtype(), cfg.optionalString("hf_hook_point_in"), cfg.optionalString("model_name"),
                List.of(dir.resolve("config.json"), weights));
        return new SingleSae(config, w.matrix("w_enc", dIn, dSae, false), Optional.of(w.vector("b_enc", dSae)),
                w.matrix("w_dec", dSae, dIn, false), w.vector("b_dec", dIn), Optional.of(w.vectorOrScalar("threshold", dSae)),
                Optional.empty(), Optional.empty(), Optional.empty(), Optional.empty());
    }
}
