package io.saeguard.topics.safetensors;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Objects;

/**
 * One tensor of a safetensors container: a typed, shaped view over little-endian bytes. The bytes
 * are not copied: for a record read from Kafka they are a slice of the record value, for a file a
 * slice of its memory map. Conversions to Java arrays widen F16/BF16 to F32 on the way.
 *
 * <p>Immutable and safe to share across threads (every read works on a duplicate of the buffer).
 */
public final class Tensor {
    private final String name;
    private final DType dtype;
    private final long[] shape;
    private final ByteBuffer data;
    private final long elementCount;

    Tensor(String name, DType dtype, long[] shape, ByteBuffer data) {
        this.name = Objects.requireNonNull(name, "name");
        this.dtype = Objects.requireNonNull(dtype, "dtype");
        this.shape = shape.clone();
        this.data = data.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
        this.elementCount = product(shape);
        if (elementCount * dtype.bytes() != data.remaining()) {
            throw new IllegalArgumentException("tensor '" + name + "': " + elementCount + " elements of "
                    + dtype + " need " + elementCount * dtype.bytes() + " bytes, got " + data.remaining());
        }
    }

    /**
     * A tensor over little-endian bytes read from elsewhere (e.g. an .npy array); the buffer is
     * used, not copied, and must hold exactly shape × dtype bytes.
     */
    public static Tensor of(String name, DType dtype, long[] shape, ByteBuffer littleEndianData) {
        return new Tensor(name, dtype, shape, littleEndianData.slice());
    }

    static long product(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    public String name() {
        return name;
    }

    public DType dtype() {
        return dtype;
    }

    /** The shape; a copy, so callers may keep it. */
    public long[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    /** Size of dimension {@code i}. */
    public long dim(int i) {
        return shape[i];
    }

    public long elementCount() {
        return elementCount;
    }

    public long byteSize() {
        return data.remaining();
    }

    /** A read-only little-endian view of the raw bytes, positioned at 0. */
    public ByteBuffer bytes() {
        return data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** All elements as floats (any floating dtype, widened to F32; integer dtypes converted). */
    public float[] toFloatArray() {
        float[] out = new float[Math.toIntExact(elementCount)];
        copyFloats(0, out, 0, out.length);
        return out;
    }

    /**
     * Copies {@code count} elements starting at flat element index {@code from} into {@code dst},
     * widening to F32. This is the hot-path read: F32 is a bulk copy, F16/BF16 one conversion each.
     */
    public void copyFloats(long from, float[] dst, int dstOffset, int count) {
        if (from < 0 || count < 0 || from + count > elementCount) {
            throw new IndexOutOfBoundsException("tensor '" + name + "': elements [" + from + ", " + (from + count)
                    + ") outside [0, " + elementCount + ")");
        }
        ByteBuffer b = bytes();
        int start = Math.toIntExact(from * dtype.bytes());
        switch (dtype) {
            case F32 -> b.position(start).asFloatBuffer().get(dst, dstOffset, count);
            case F16 -> {
                for (int i = 0; i < count; i++) {
                    dst[dstOffset + i] = HalfFloats.f16ToFloat(b.getShort(start + 2 * i));
                }
            }
            case BF16 -> {
                for (int i = 0; i < count; i++) {
                    dst[dstOffset + i] = HalfFloats.bf16ToFloat(b.getShort(start + 2 * i));
                }
            }
            case F64 -> {
                for (int i = 0; i < count; i++) {
                    dst[dstOffset + i] = (float) b.getDouble(start + 8 * i);
                }
            }
            default -> {
                for (int i = 0; i < count; i++) {
                    dst[dstOffset + i] = (float) integerAt(b, start, i);
                }
            }
        }
    }

    /** All elements as longs; integer dtypes only. */
    public long[] toLongArray() {
        if (dtype.isFloating()) {
            throw new IllegalStateException("tensor '" + name + "' is " + dtype + ", not an integer dtype");
        }
        ByteBuffer b = bytes();
        long[] out = new long[Math.toIntExact(elementCount)];
        for (int i = 0; i < out.length; i++) {
            out[i] = integerAt(b, 0, i);
        }
        return out;
    }

    /** All elements as ints; integer dtypes only, values outside the int range are an error. */
    public int[] toIntArray() {
        long[] longs = toLongArray();
        int[] out = new int[longs.length];
        for (int i = 0; i < longs.length; i++) {
            out[i] = Math.toIntExact(longs[i]);
        }
        return out;
    }

    private long integerAt(ByteBuffer b, int start, int i) {
        return switch (dtype) {
            case I64 -> b.getLong(start + 8 * i);
            case I32 -> b.getInt(start + 4 * i);
            case I16 -> b.getShort(start + 2 * i);
            case I8 -> b.get(start + i);
            case U8, BOOL -> b.get(start + i) & 0xff;
            default -> throw new IllegalStateException(dtype + " is not an integer dtype");
        };
    }

    @Override
    public String toString() {
        return "Tensor[" + name + ", " + dtype + ", " + Arrays.toString(shape) + "]";
    }
}
