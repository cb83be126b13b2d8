package io.saeguard.sae.format;

import com.fasterxml.jackson.databind.JsonNode;
import io.saeguard.sae.Architecture;
import io.saeguard.sae.Normalization;
import io.saeguard.sae.SaeConfig;
import io.saeguard.sae.SaeFormat;
import io.saeguard.sae.SaeFormatException;
import io.saeguard.sae.SingleSae;
import io.saeguard.sae.Weight;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * SAELens: {@code cfg.json} + {@code sae_weights.safetensors} (+ optional {@code sparsity.safetensors}).
 * Reads v6 configs (model and hook under {@code metadata}) and pre-6.0 flat configs (TopK as
 * {@code activation_fn_str: topk} with {@code activation_fn_kwargs.k}; hook as {@code hook_name} or
 * {@code hook_point}). {@code expected_average_only_in} needs the dataset factor, which SAELens keeps
 * in its registry rather than in the files: saeguard reads it from {@code norm_scaling_factor} in
 * {@code cfg.json}.
 */
final class SaeLensFormat {
    static final String SUPPORTED = "standard, jumprelu, topk, batchtopk, matryoshka_batchtopk, abstopk, gated";

    private SaeLensFormat() {
    }

    static SingleSae load(Path dir) throws SaeFormatException {
        JsonConfig cfg = JsonConfig.read(dir.resolve("cfg.json"));
        JsonConfig metadata = cfg.child("metadata");
        int dIn = cfg.requireInt("d_in");
        int dSae = cfg.requireInt("d_sae");
        Architecture arch = architecture(cfg);
        OptionalInt k = OptionalInt.empty();
        Optional<Integer> kv6 = cfg.optionalInt("k");
        if (kv6.isPresent()) {
            k = OptionalInt.of(kv6.get());
        } else {
            Optional<Integer> kv5 = cfg.child("activation_fn_kwargs").optionalInt("k");
            if (kv5.isPresent()) {
                k = OptionalInt.of(kv5.get());
            }
        }
        if (k.isPresent() && (k.getAsInt() < 1 || k.getAsInt() > dSae)) {
            throw SaeFormatException.in(cfg.file(), "k = " + k.getAsInt() + " must be in [1, d_sae = " + dSae + "]");
        }
        Normalization norm = normalization(cfg);
        double scale = 1.0;
        if (norm == Normalization.EXPECTED_AVERAGE_ONLY_IN) {
            scale = cfg.optionalDouble("norm_scaling_factor").orElseThrow(() -> SaeFormatException.in(cfg.file(),
                    "normalize_activations is expected_average_only_in but 'norm_scaling_factor' is missing; SAELens keeps it in "
                            + "pretrained_saes.yaml (e.g. 58.94 for Llama Scope L0R 8x): add it to cfg.json"));
            if (!(scale > 0) || Double.isInfinite(scale)) {
                throw SaeFormatException.in(cfg.file(), "norm_scaling_factor must be a positive number, found " + scale);
            }
        }
        Optional<String> hook = metadata.optionalString("hook_name").or(() -> opt(cfg, "hook_name")).or(() -> opt(cfg, "hook_point"));
        Optional<String> model = metadata.optionalString("model_name").or(() -> opt(cfg, "model_name"));

        Path weightsFile = dir.resolve("sae_weights.safetensors");
        WeightFile w = SaeLoader.safetensors(weightsFile);
        if (w.has("scaling_factor")) {
            float[] sf = w.vector("scaling_factor", dSae).toFloatArray();
            for (float v : sf) {
                if (v != 1f) {
                    throw SaeFormatException.in(weightsFile, "legacy 'scaling_factor' tensor with values other than 1 is not supported; "
                            + "re-save the SAE with SAELens >= 6 (which folds it into W_dec)");
                }
            }
        }
        List<Path> files = new ArrayList<>(List.of(dir.resolve("cfg.json"), weightsFile));
        Optional<float[]> density = Optional.empty();
        Path sparsityFile = dir.resolve("sparsity.safetensors");
        if (Files.isRegularFile(sparsityFile)) {
            WeightFile sp = SaeLoader.safetensors(sparsityFile);
            float[] log10 = sp.vector("sparsity", dSae).toFloatArray();
            float[] d = new float[dSae];
            for (int i = 0; i < dSae; i++) {
                d[i] = (float) Math.pow(10, log10[i]);
            }
            density = Optional.of(d);
            files.add(sparsityFile);
        }
        SaeConfig config = new SaeConfig(dir, SaeFormat.SAELENS, arch, dIn, dSae, k, cfg.bool("apply_b_dec_to_input", true), norm,
                scale, scale, cfg.bool("rescale_acts_by_decoder_norm", false), w.storedDtype(), hook, model, files);
        boolean gated = arch == Architecture.GATED;
        Optional<Weight> threshold = Optional.empty();
        if (arch == Architecture.JUMPRELU || arch == Architecture.BATCHTOPK) {
            threshold = Optional.of(w.vectorOrScalar("threshold", dSae));
        }
        return new SingleSae(config, w.matrix("W_enc", dIn, dSae, false), gated ? Optional.empty() : Optional.of(w.vector("b_enc", dSae)),
                w.matrix("W_dec", dSae, dIn, false), w.vector("b_dec", dIn), threshold,
                gated ? Optional.of(w.vector("b_gate", dSae)) : Optional.empty(),
                gated ? Optional.of(w.vector("r_mag", dSae)) : Optional.empty(),
                gated ? Optional.of(w.vector("b_mag", dSae)) : Optional.empty(), density);
    }

    private static Optional<String> opt(JsonConfig cfg, String key) {
        try {
            return cfg.optionalString(key);
        } catch (SaeFormatException e) {
            return Optional.empty();
        }
    }

    static Architecture architecture(JsonConfig cfg) throws SaeFormatException {
        String name = cfg.optionalString("architecture").orElse("standard").toLowerCase(Locale.ROOT);
        String fn = cfg.optionalString("activation_fn_str").orElse("relu").toLowerCase(Locale.ROOT);
        Architecture a = switch (name) {
            case "standard", "relu" -> fn.equals("topk") ? Architecture.TOPK : Architecture.STANDARD;
            case "jumprelu" -> Architecture.JUMPRELU;
            case "topk" -> Architecture.TOPK;
            // BatchTopK and Matryoshka at inference are JumpReLU with a global threshold (docs/algorithms.md#batchtopk-and-matryoshka).
            case "batchtopk", "matryoshka_batchtopk" -> Architecture.BATCHTOPK;
            case "abstopk" -> Architecture.ABSTOPK;
            case "gated" -> Architecture.GATED;
            default -> throw SaeFormatException.in(cfg.file(), "unknown or unsupported architecture '" + name + "' (supported: "
                    + SUPPORTED + ")");
        };
        if (!fn.equals("relu") && !fn.equals("topk")) {
            throw SaeFormatException.in(cfg.file(), "unsupported activation_fn_str '" + fn + "' (supported: relu, topk)");
        }
        return a;
    }

    static Normalization normalization(JsonConfig cfg) throws SaeFormatException {
        Optional<JsonNode> n = cfg.node("normalize_activations");
        if (n.isEmpty()) {
            return Normalization.NONE;
        }
        if (n.get().isBoolean()) {
            if (!n.get().booleanValue()) {
                return Normalization.NONE;
            }
            throw SaeFormatException.in(cfg.file(), "normalize_activations: true is ambiguous in old configs; set it to one of "
                    + "none, expected_average_only_in, constant_norm_rescale, layer_norm");
        }
        String s = n.get().asText().toLowerCase(Locale.ROOT);
        return switch (s) {
            case "none", "" -> Normalization.NONE;
            case "expected_average_only_in" -> Normalization.EXPECTED_AVERAGE_ONLY_IN;
            case "constant_norm_rescale" -> Normalization.CONSTANT_NORM_RESCALE;
            case "layer_norm" -> Normalization.LAYER_NORM;
            default -> throw SaeFormatException.in(cfg.file(), "unknown normalize_activations '" + s
                    + "' (supported: none, expected_average_only_in, constant_norm_rescale, layer_norm)");
        };
    }
}
