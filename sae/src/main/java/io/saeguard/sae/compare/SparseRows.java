package io.saeguard.sae.compare;

import java.util.Arrays;

/**
 * Feature activations of a run of tokens, sparse (CSR): token {@code t}'s non-zero features are
 * {@code ids[offsets[t] .. offsets[t+1])} with {@code values} alongside. Built row by row ({@link Builder}); immutable after.
 *
 * @param width the SAE's d_sae
 */
public record SparseRows(int tokens, int width, int[] offsets, int[] ids, float[] values) {
    /** Appends dense rows as they are encoded, keeping only non-zero codes. Not thread-safe. */
    public static final class Builder {
        private final int width;
        private int tokens;
        private int[] offsets = new int[1025];
        private int[] ids = new int[4096];
        private float[] values = new float[4096];
        private int nnz;

        public Builder(int width) {
            this.width = width;
        }

        /** Adds {@code rows} rows of {@code dense} ({@code [rows, width]} row-major). */
        public Builder addDense(float[] dense, int rows) {
            if ((long) rows * width > dense.length) {
                throw new IllegalArgumentException(rows + " rows of width " + width + " need " + (long) rows * width + " values, found " + dense.length);
            }
            for (int r = 0; r < rows; r++) {
                for (int f = 0; f < width; f++) {
                    float v = dense[r * width + f];
                    if (v != 0) {
                        if (nnz == ids.length) {
                            ids = Arrays.copyOf(ids, nnz * 2);
                            values = Arrays.copyOf(values, nnz * 2);
                        }
                        ids[nnz] = f;
                        values[nnz++] = v;
                    }
                }
                if (tokens + 2 > offsets.length) {
                    offsets = Arrays.copyOf(offsets, offsets.length * 2);
                }
                offsets[++tokens] = nnz;
            }
            return this;
        }

        public SparseRows build() {
            return new SparseRows(tokens, width, Arrays.copyOf(offsets, tokens + 1), Arrays.copyOf(ids, nnz), Arrays.copyOf(values, nnz));
        }
    }
}
