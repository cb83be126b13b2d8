package io.saeguard.detectors.select;

import io.saeguard.topics.codes.SparseCodes;

/** Selects tokens of a {@link SparseCodes} into new codes (SparseCodes itself stays minimal). */
final class CodeSlices {
    private CodeSlices() {}

    /** The listed tokens, in the given order. */
    static SparseCodes of(SparseCodes codes, int[] tokens) {
        int nnz = 0;
        for (int t : tokens) {
            nnz += codes.activeCount(t);
        }
        int[] rowStart = new int[tokens.length + 1];
        int[] idx = new int[nnz];
        float[] val = new float[nnz];
        int p = 0;
        for (int i = 0; i < tokens.length; i++) {
            rowStart[i] = p;
            int t = tokens[i];
            for (int j = 0; j < codes.activeCount(t); j++) {
                idx[p] = codes.featureAt(t, j);
                val[p] = codes.valueAt(t, j);
                p++;
            }
        }
        rowStart[tokens.length] = p;
        return SparseCodes.ofCsr(codes.sae(), codes.dSae(), rowStart, idx, val);
    }
}
