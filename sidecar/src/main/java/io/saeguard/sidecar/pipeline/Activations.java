package io.saeguard.sidecar.pipeline;

import io.saeguard.topics.activation.ActivationChunk;

/**
 * A chunk's activations {@code [tokens, d_in]}, row-major, all finite: either still in the record's own bytes (an
 * activation record, in its wire dtype) or already F32 (a prompt model's output, an HTTP check). The engine reads
 * them once, straight into its batch buffer ({@link #copyTo}); a BF16 or F16 record is widened there, with no F32 copy
 * of the record in between (half the in-flight memory of an F32 copy for BF16, none of its allocation).
 */
sealed interface Activations {
    /** Writes the values, widened to F32, into {@code dst} from {@code offset}. */
    void copyTo(float[] dst, int offset);

    /** The values as an F32 array (a fresh one for a record; detectors that read activations call it). */
    float[] toArray();

    static Activations of(float[] values) {
        return new Decoded(values);
    }

    static Activations of(ActivationChunk chunk) {
        return new InRecord(chunk);
    }

    /** Already F32. */
    record Decoded(float[] values) implements Activations {
        @Override
        public void copyTo(float[] dst, int offset) {
            System.arraycopy(values, 0, dst, offset, values.length);
        }

        @Override
        public float[] toArray() {
            return values;
        }
    }

    /** In the record's bytes, in its wire dtype. */
    record InRecord(ActivationChunk chunk) implements Activations {
        @Override
        public void copyTo(float[] dst, int offset) {
            chunk.copyRows(0, chunk.tokens(), dst, offset);
        }

        @Override
        public float[] toArray() {
            return chunk.toFloatArray();
        }
    }
}
