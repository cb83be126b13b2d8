package io.saeguard.sae;

import java.util.Optional;

/**
 * A loaded SAE: its {@link SaeConfig} and its weights, held off-heap in F32. Either one dictionary
 * ({@link SingleSae}) or a base plus a residual dictionary ({@link ComposedSae}).
 *
 * <p>Immutable and thread-safe; the engine copies the weights it needs onto its device.
 */
public sealed interface Sae permits SingleSae, ComposedSae {
    SaeConfig config();

    /**
     * The SAE's firing density per feature on its training data (from SAELens'
     * {@code sparsity.safetensors}, stored as log10), when the files carry one.
     */
    Optional<float[]> baselineDensity();

    /** Writes feature {@code f}'s decoder direction ({@code W_dec[f]}, length {@code d_in}) into {@code dst}. */
    void decoderRow(int f, float[] dst);
}
