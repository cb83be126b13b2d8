package io.saeguard.sae;

import java.util.Locale;

/** SAELens' {@code normalize_activations} modes (docs/algorithms.md#input-transforms). */
public enum Normalization {
    /** The input is used as is. */
    NONE,
    /** A dataset constant: input × s, output ÷ s (Llama Scope: a separate output constant). */
    EXPECTED_AVERAGE_ONLY_IN,
    /** Per token {@code c = √d / ‖x‖}: input × c, output ÷ c. */
    CONSTANT_NORM_RESCALE,
    /** Per token {@code (x − μ)/(σ + 1e-5)} with the unbiased σ; output {@code y·σ + μ}. */
    LAYER_NORM;

    public String wireName() {
        return name().toLowerCase(Locale.ROOT);
    }
}
