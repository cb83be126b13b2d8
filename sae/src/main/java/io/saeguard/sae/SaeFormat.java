package io.saeguard.sae;

import java.util.Locale;

/** The on-disk layouts the loader reads (docs/algorithms.md#file-formats-and-hook-names). */
public enum SaeFormat {
    /** {@code cfg.json} (v5 flat or v6 with {@code metadata}) + {@code sae_weights.safetensors}. */
    SAELENS,
    /** Gemma Scope 1: {@code params.npz}. */
    GEMMA_SCOPE,
    /** Gemma Scope 2: {@code params.safetensors} + {@code config.json}. */
    GEMMA_SCOPE_2,
    /** EleutherAI sparsify: {@code cfg.json} + {@code sae.safetensors}. */
    SPARSIFY,
    /** Llama Scope: {@code hyperparams.json} + {@code checkpoints/final.safetensors}. */
    LLAMA_SCOPE,
    /** saeguard's {@code saeguard-composed.json}: a base and a residual SAE. */
    COMPOSED;

    public String wireName() {
        return name().toLowerCase(Locale.ROOT).replace('_', '-');
    }
}
