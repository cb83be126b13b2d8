package io.saeguard.sae.hub;

import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * How SAELens turns a release's files into an SAE (its {@code conversion_func}; {@code null} there is
 * {@link #SAE_LENS}), and which of them saeguard's loaders read. A supported conversion names the files to fetch,
 * relative to the SAE's {@code path} in the repository; the others say what they are, for the error.
 */
public enum Conversion {
    SAE_LENS("sae_lens", "SAELens cfg.json + sae_weights.safetensors", List.of("cfg.json", "sae_weights.safetensors"),
            List.of("sparsity.safetensors")),
    GEMMA_2("gemma_2", "Gemma Scope params.npz", List.of("params.npz"), List.of()),
    LLAMA_SCOPE("llama_scope", "Llama Scope hyperparams.json + checkpoints/final.safetensors",
            List.of("hyperparams.json", "checkpoints/final.safetensors"), List.of()),
    LLAMA_SCOPE_R1_DISTILL("llama_scope_r1_distill", "Llama Scope R1 config.json + sae_weights.safetensors (its own layout)"),
    DICTIONARY_LEARNING_1("dictionary_learning_1", "dictionary_learning ae.pt PyTorch pickles"),
    DEEPSEEK_R1("deepseek_r1", "a PyTorch .pt state dict"),
    CONNOR_ROB_HOOK_Z("connor_rob_hook_z", "attention hook_z SAEs as PyTorch .pt files"),
    GEMMA_2_TRANSCODER("gemma_2_transcoder", "Gemma Scope transcoders"),
    MWHANNA_TRANSCODER("mwhanna_transcoder", "transcoders"),
    MNTSS_CLT_LAYER_TRANSCODER("mntss_clt_layer_transcoder", "cross-layer transcoders");

    private final String wireName;
    private final String files;
    private final List<String> required;
    private final List<String> optional;

    Conversion(String wireName, String files) {
        this(wireName, files, List.of(), List.of());
    }

    Conversion(String wireName, String files, List<String> required, List<String> optional) {
        this.wireName = wireName;
        this.files = files;
        this.required = required;
        this.optional = optional;
    }

    /** SAELens's name for it. */
    public String wireName() {
        return wireName;
    }

    /** What the files are, in words. */
    public String files() {
        return files;
    }

    /** Whether saeguard loads what this conversion names. */
    public boolean supported() {
        return !required.isEmpty();
    }

    /** The files an SAE of this conversion needs, relative to its path in the repository. */
    public List<String> requiredFiles() {
        return required;
    }

    /** Files fetched when the repository has them. */
    public List<String> optionalFiles() {
        return optional;
    }

    static Optional<Conversion> of(String wireName) {
        return Arrays.stream(values()).filter(c -> c.wireName.equals(wireName)).findFirst();
    }

    static String supportedList() {
        return Arrays.stream(values()).filter(Conversion::supported).map(c -> c.wireName + " (" + c.files + ")")
                .collect(Collectors.joining(", "));
    }
}
