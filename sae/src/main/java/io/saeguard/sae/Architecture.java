package io.saeguard.sae;

import java.util.Locale;

/**
 * How an SAE turns pre-activations into codes (docs/algorithms.md#sae-encoders). The names are those SAELens uses
 * in {@code cfg.json}, plus {@code abstopk} and {@code composed}.
 */
public enum Architecture {
    /** ReLU (§5.1): {@code a = ReLU(pre)}. */
    STANDARD,
    /** JumpReLU (§5.2): {@code a = ReLU(pre)·1[pre > θ]}, θ per feature (or one scalar). */
    JUMPRELU,
    /** TopK (§5.3): the k largest pre-activations per token, then ReLU. */
    TOPK,
    /** BatchTopK at inference (§5.4): JumpReLU with one global θ, so tokens never couple. */
    BATCHTOPK,
    /** AbsTopK (§5.7): the k entries of largest |pre| per token, keeping their sign. */
    ABSTOPK,
    /** Gated (§5.6): {@code 1[π_gate > 0]·ReLU(π_mag)}. */
    GATED,
    /** A base SAE plus a residual SAE trained on its error (§5.10); codes concatenated. */
    COMPOSED;

    public String wireName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** Whether codes may be negative (so "fired" means non-zero, not positive). */
    public boolean signed() {
        return this == ABSTOPK;
    }
}
