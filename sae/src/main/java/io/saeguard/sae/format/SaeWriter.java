package io.saeguard.sae.format;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.saeguard.sae.train.TopKWeights;
import io.saeguard.topics.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * Writes SAEs that {@link SaeLoader} (and SAELens) load: a TopK SAE as a SAELens v6 directory, and
 * a composed (base + residual) SAE as {@code saeguard-composed.json} beside its parts.
 */
public final class SaeWriter {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private SaeWriter() {
    }

    /**
     * Writes {@code dir/cfg.json}, {@code dir/sae_weights.safetensors} ({@code W_enc [d_in, d_sae]},
     * {@code b_enc}, {@code W_dec [d_sae, d_in]}, {@code b_dec}, F32) and, when given,
     * {@code dir/sparsity.safetensors} ({@code sparsity [d_sae]}, log10 firing density). The config
     * is SAELens v6's for a TopK SAE: architecture {@code topk}, {@code k}, dtype float32,
     * {@code apply_b_dec_to_input} true, {@code normalize_activations} none, model and hook under
     * {@code metadata}. Creates {@code dir} if needed; existing files of these names are replaced.
     */
    public static void writeTopK(Path dir, TopKWeights w, Optional<float[]> log10Density, Optional<String> model, Optional<String> hook)
            throws IOException {
        if (log10Density.isPresent() && log10Density.get().length != w.dSae()) {
            throw new IllegalArgumentException("density has " + log10Density.get().length + " entries, expected d_sae " + w.dSae());
        }
        Files.createDirectories(dir);
        Map<String, Object> cfg = new LinkedHashMap<>();
        cfg.put("architecture", "topk");
        cfg.put("d_in", w.dIn());
        cfg.put("d_sae", w.dSae());
        cfg.put("k", w.k());
        cfg.put("rescale_acts_by_decoder_norm", false);
        cfg.put("dtype", "float32");
        cfg.put("device", "cpu");
        cfg.put("apply_b_dec_to_input", true);
        cfg.put("normalize_activations", "none");
        cfg.put("reshape_activations", "none");
        Map<String, Object> metadata = new LinkedHashMap<>();
        model.ifPresent(m -> metadata.put("model_name", m));
        hook.ifPresent(h -> metadata.put("hook_name", h));
        cfg.put("metadata", metadata);
        JSON.writeValue(dir.resolve("cfg.json").toFile(), cfg);
        new SafetensorsWriter().metadata("format", "pt")
                .addF32("W_enc", new long[] {w.dIn(), w.dSae()}, w.wEnc())
                .addF32("b_enc", new long[] {w.dSae()}, w.bEnc())
                .addF32("W_dec", new long[] {w.dSae(), w.dIn()}, w.wDec())
                .addF32("b_dec", new long[] {w.dIn()}, w.bDec())
                .writeTo(dir.resolve("sae_weights.safetensors"));
        if (log10Density.isPresent()) {
            new SafetensorsWriter().metadata("format", "pt").addF32("sparsity", new long[] {w.dSae()}, log10Density.get())
                    .writeTo(dir.resolve("sparsity.safetensors"));
        } else {
            Files.deleteIfExists(dir.resolve("sparsity.safetensors"));
        }
    }

    /**
     * Writes {@code dir/saeguard-composed.json} naming a base and a residual SAE whose input is the
     * base's reconstruction error. Relative paths resolve against {@code dir}.
     */
    public static void writeComposed(Path dir, String basePath, String residualPath) throws IOException {
        Files.createDirectories(dir);
        Map<String, Object> cfg = new LinkedHashMap<>();
        cfg.put("base", basePath);
        cfg.put("residual", residualPath);
        cfg.put("residual_input", "error");
        JSON.writeValue(dir.resolve(ComposedFormat.FILE).toFile(), cfg);
    }
}
