package io.saeguard.sae;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Objects;

/**
 * One SAE parameter as F32, in a direct (off-heap) little-endian buffer: either a slice of the
 * memory-mapped weights file (F32 files, zero copy) or a buffer widened once at load (BF16/F16 —
 * DJL 0.35 must never see a BF16 array). Nothing is duplicated on the Java heap.
 *
 * <p>A matrix has a logical shape (the orientation the formulas use, e.g. {@code W_enc [d_in, d_sae]})
 * and may be stored transposed (e.g. sparsify's {@code encoder.weight [d_sae, d_in]}); the engine
 * hands the transposed view to libtorch rather than copying.
 */
public final class Weight {
    private final String source;
    private final long[] shape;
    private final boolean transposed;
    private final ByteBuffer data;

    public Weight(String source, long[] logicalShape, boolean transposed, ByteBuffer f32le) {
        this.source = Objects.requireNonNull(source, "source");
        this.shape = logicalShape.clone();
        if (transposed && shape.length != 2) {
            throw new IllegalArgumentException(source + ": only matrices can be stored transposed");
        }
        this.transposed = transposed;
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        if (f32le.remaining() != n * 4) {
            throw new IllegalArgumentException(source + ": " + n + " floats need " + n * 4 + " bytes, got " + f32le.remaining());
        }
        if (!f32le.isDirect()) {
            throw new IllegalArgumentException(source + ": weights must live off-heap (direct or mapped buffer)");
        }
        this.data = f32le.slice().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Where it came from, e.g. {@code sae_weights.safetensors:W_enc}. */
    public String source() {
        return source;
    }

    /** The logical shape. */
    public long[] shape() {
        return shape.clone();
    }

    public long dim(int i) {
        return shape[i];
    }

    public int rank() {
        return shape.length;
    }

    /** Whether the bytes hold the transpose of the logical matrix. */
    public boolean transposed() {
        return transposed;
    }

    /** The stored shape (the logical one reversed when transposed). */
    public long[] storedShape() {
        return transposed ? new long[] {shape[1], shape[0]} : shape.clone();
    }

    /** The raw F32 little-endian bytes in stored order; a read-only view. */
    public ByteBuffer bytes() {
        return data.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** A direct buffer DJL may read (DJL wants a writable-looking direct ByteBuffer; it never writes). */
    public ByteBuffer directBytes() {
        return data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    }

    public long elementCount() {
        return data.remaining() / 4;
    }

    /** Element {@code i} of a vector (or of the flattened stored bytes). */
    public float get(long i) {
        return data.getFloat(Math.toIntExact(i * 4));
    }

    /** Element {@code [r, c]} of the logical matrix. */
    public float get(long r, long c) {
        long i = transposed ? c * shape[0] + r : r * shape[1] + c;
        return data.getFloat(Math.toIntExact(i * 4));
    }

    /** Row {@code r} of the logical matrix into {@code dst} (a decoder direction, for W_dec). */
    public void row(long r, float[] dst) {
        int cols = Math.toIntExact(shape[1]);
        if (!transposed) {
            data.asFloatBuffer().position(Math.toIntExact(r * cols)).get(dst, 0, cols);
            return;
        }
        for (int c = 0; c < cols; c++) {
            dst[c] = get(r, c);
        }
    }

    /** All elements in logical order, copied to the heap (for small vectors only). */
    public float[] toFloatArray() {
        if (transposed) {
            float[] out = new float[Math.toIntExact(elementCount())];
            int cols = Math.toIntExact(shape[1]);
            for (int r = 0; r < shape[0]; r++) {
                for (int c = 0; c < cols; c++) {
                    out[r * cols + c] = get(r, c);
                }
            }
            return out;
        }
        float[] out = new float[Math.toIntExact(elementCount())];
        data.asFloatBuffer().get(out);
        return out;
    }

    /** A vector weight from heap values, copied off-heap (for derived parameters such as an expanded θ). */
    public static Weight ofVector(String source, float[] values) {
        ByteBuffer b = ByteBuffer.allocateDirect(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(values);
        return new Weight(source, new long[] {values.length}, false, b);
    }

    @Override
    public String toString() {
        return "Weight[" + source + ", " + Arrays.toString(shape) + (transposed ? ", stored transposed" : "") + "]";
    }
}
