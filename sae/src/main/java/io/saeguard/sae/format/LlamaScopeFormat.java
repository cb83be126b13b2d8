package io.saeguard.sae.format;

import io.saeguard.sae.Architecture;
import io.saeguard.sae.Normalization;
import io.saeguard.sae.SaeConfig;
import io.saeguard.sae.SaeFormat;
import io.saeguard.sae.SaeFormatException;
import io.saeguard.sae.SingleSae;
import io.saeguard.sae.Weight;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * Llama Scope: {@code hyperparams.json} + {@code checkpoints/final.safetensors} (BF16):
 * {@code encoder.weight [d_sae, d_model]}, {@code encoder.bias}, {@code decoder.weight [d_model, d_sae]},
 * {@code decoder.bias}; JumpReLU with one scalar {@code jump_relu_threshold}, given in raw-activation
 * units and so compared as θ·√d/{@code in} with the normalised pre-activation (or a per-feature
 * {@code log_jumprelu_threshold} tensor, exponentiated, in the R1-distill variant). Dataset-wise
 * normalisation: input × √d / {@code dataset_average_activation_norm.in}, reconstruction ×
 * {@code .out} / √d.
 */
final class LlamaScopeFormat {
    private LlamaScopeFormat() {
    }

    static SingleSae load(Path dir) throws SaeFormatException {
        JsonConfig cfg = JsonConfig.read(dir.resolve("hyperparams.json"));
        String act = cfg.optionalString("act_fn").orElse("jumprelu");
        if (!act.equals("jumprelu")) {
            throw SaeFormatException.in(cfg.file(), "act_fn '" + act + "' is not supported (only jumprelu)");
        }
        int dIn = cfg.requireInt("d_model");
        int dSae = cfg.requireInt("d_sae");
        String normMode = cfg.optionalString("norm_activation").orElse("dataset-wise");
        Normalization norm;
        double in = 1;
        double out = 1;
        if (normMode.equals("dataset-wise")) {
            JsonConfig avg = cfg.child("dataset_average_activation_norm");
            double nIn = avg.requireDouble("in");
            double nOut = avg.optionalDouble("out").orElse(nIn);
            if (!(nIn > 0) || !(nOut > 0)) {
                throw SaeFormatException.in(cfg.file(), "dataset_average_activation_norm must be positive");
            }
            norm = Normalization.EXPECTED_AVERAGE_ONLY_IN;
            in = Math.sqrt(dIn) / nIn;
            out = Math.sqrt(dIn) / nOut;
        } else if (normMode.equals("none")) {
            norm = Normalization.NONE;
        } else {
            throw SaeFormatException.in(cfg.file(), "norm_activation '" + normMode + "' is not supported (dataset-wise, none)");
        }
        Path weights = dir.resolve("checkpoints").resolve("final.safetensors");
        WeightFile w = SaeLoader.safetensors(weights);
        Weight threshold;
        if (w.has("log_jumprelu_threshold")) {
            float[] log = w.vector("log_jumprelu_threshold", dSae).toFloatArray();
            float[] t = new float[dSae];
            for (int i = 0; i < dSae; i++) {
                t[i] = (float) Math.exp(log[i]);
            }
            threshold = Weight.ofVector(weights.getFileName() + ":exp(log_jumprelu_threshold)", t);
        } else {
            // jump_relu_threshold is in raw-activation units: on the normalised pre-activation the cut is
            // θ·s (OpenMOSS lm-saes at the Llama Scope release; SAELens' llama_scope loader scales θ
            // the same way when it folds the norm into W_enc).
            threshold = Weight.ofVector("hyperparams.json:jump_relu_threshold*s",
                    new float[] {(float) (cfg.requireDouble("jump_relu_threshold") * in)});
        }
        SaeConfig config = new SaeConfig(dir, SaeFormat.LLAMA_SCOPE, Architecture.JUMPRELU, dIn, dSae, OptionalInt.empty(),
                cfg.bool("apply_decoder_bias_to_pre_encoder", false), norm, in, out, false, w.storedDtype(),
                cfg.optionalString("hook_point_in"), Optional.empty(), List.of(cfg.file(), weights));
        return new SingleSae(config, w.matrix("encoder.weight", dIn, dSae, true), Optional.of(w.vector("encoder.bias", dSae)),
                w.matrix("decoder.weight", dSae, dIn, true), w.vector("decoder.bias", dIn), Optional.of(threshold), Optional.empty(),
                Optional.empty(), Optional.empty(), Optional.empty());
    }
}
