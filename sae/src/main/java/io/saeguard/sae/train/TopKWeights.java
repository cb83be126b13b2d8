package io.saeguard.sae.train;

/**
 * A TopK SAE's parameters on the heap, in SAELens orientation, row-major.
 *
 * @param dIn  input width
 * @param dSae dictionary size
 * @param k    active latents per row
 * @param wEnc {@code [d_in, d_sae]}
 * @param bEnc {@code [d_sae]}
 * @param wDec {@code [d_sae, d_in]}, unit-norm rows
 * @param bDec {@code [d_in]}
 */
public record TopKWeights(int dIn, int dSae, int k, float[] wEnc, float[] bEnc, float[] wDec, float[] bDec) {
    public TopKWeights {
        if (wEnc.length != (long) dIn * dSae || wDec.length != (long) dIn * dSae || bEnc.length != dSae || bDec.length != dIn) {
            throw new IllegalArgumentException("weights do not match d_in " + dIn + " and d_sae " + dSae);
        }
    }
}
