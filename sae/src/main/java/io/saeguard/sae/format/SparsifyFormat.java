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
 * EleutherAI sparsify: {@code cfg.json} ({@code d_in}, {@code num_latents} or
 * {@code expansion_factor}, {@code k}) + {@code sae.safetensors} with {@code encoder.weight
 * [num_latents, d_in]} (the transpose of SAELens' W_enc), {@code encoder.bias}, {@code W_dec
 * [num_latents, d_in]}, {@code b_dec}. Encode {@code topk(ReLU((x − b_dec)·encᵀ + b))} (docs/algorithms.md#topk).
 * The hook is the folder name (sparsify names folders by HF module, e.g. {@code layers.10}).
 */
final class SparsifyFormat {
    private SparsifyFormat() {
    }

    static SingleSae load(Path dir) throws SaeFormatException {
        JsonConfig cfg = JsonConfig.read(dir.resolve("cfg.json"));
        if (cfg.bool("signed", false)) {
            throw SaeFormatException.in(cfg.file(), "signed: true is not supported (its encode rule is not documented)");
        }
        String activation = cfg.optionalString("activation").orElse("topk");
        if (!activation.equals("topk")) {
            throw SaeFormatException.in(cfg.file(), "activation '" + activation + "' is not supported (only topk)");
        }
        if (cfg.bool("transcode", false)) {
            throw SaeFormatException.in(cfg.file(), "transcoders are not supported (transcode: true)");
        }
        int dIn = cfg.requireInt("d_in");
        int latents = cfg.optionalInt("num_latents").orElse(0);
        if (latents == 0) {
            latents = dIn * cfg.requireInt("expansion_factor");
        }
        int k = cfg.requireInt("k");
        if (k < 1 || k > latents) {
            throw SaeFormatException.in(cfg.file(), "k = " + k + " must be in [1, num_latents = " + latents + "]");
        }
        Path weights = dir.resolve("sae.safetensors");
        WeightFile w = SaeLoader.safetensors(weights);
        if (w.has("W_skip")) {
            throw SaeFormatException.in(weights, "skip connections (W_skip) are not supported");
        }
        Path name = dir.getFileName();
        SaeConfig config = new SaeConfig(dir, SaeFormat.SPARSIFY, Architecture.TOPK, dIn, latents, OptionalInt.of(k), true,
                Normalization.NONE, 1, 1, false, w.storedDtype(), Optional.ofNullable(name).map(Path::toString), Optional.empty(),
                List.of(dir.resolve("cfg.json"), weights));
        return new SingleSae(config, w.matrix("encoder.weight", dIn, latents, true), Optional.of(w.vector("encoder.bias", latents)),
                w.matrix("W_dec", latents, dIn, false), w.vector("b_dec", dIn), Optional.empty(), Optional.empty(), Optional.empty(),
                Optional.empty(), Optional.empty());
    }
}
