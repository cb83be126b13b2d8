package io.saeguard.detectors;

/**
 * Decoder directions (rows of {@code W_dec}) of the SAEs the sidecar has loaded. The detectors module
 * never sees the SAE runtime (docs/architecture.md#modules); the sidecar implements this over the loaded SAE so the
 * engine can publish steering and clamp directions.
 *
 * <p>Called only while an engine is built or a definition is replaced, on the caller's thread; never
 * on the evaluate path.
 */
public interface DecoderDirections {
    /**
     * The SAE's input width {@code d_in}.
     *
     * @throws IllegalArgumentException if the SAE is not loaded
     */
    int dIn(String sae);

    /**
     * Copies row {@code feature} of the SAE's {@code W_dec} ({@code [d_sae, d_in]}) into {@code dst}
     * (length {@code d_in}), as stored (not normalised).
     *
     * @throws IllegalArgumentException if the SAE is not loaded or the feature is outside {@code [0, d_sae)}
     */
    void direction(String sae, int feature, float[] dst);

    /** Directions for no SAE at all: for engines whose detectors never steer or clamp. */
    static DecoderDirections none() {
        return new DecoderDirections() {
            @Override
            public int dIn(String sae) {
                throw new IllegalArgumentException("no decoder directions available (SAE '" + sae + "')");
            }

            @Override
            public void direction(String sae, int feature, float[] dst) {
                throw new IllegalArgumentException("no decoder directions available (SAE '" + sae + "')");
            }
        };
    }
}
