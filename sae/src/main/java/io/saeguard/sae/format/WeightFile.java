package io.saeguard.sae.format;

import io.saeguard.sae.SaeFormatException;
import io.saeguard.sae.Weight;
import io.saeguard.topics.safetensors.DType;
import io.saeguard.topics.safetensors.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Optional;

/**
 * The tensors of one weights file (safetensors or npz), with shape-checked accessors that return
 * F32 {@link Weight}s. Orientation is resolved by shape, never by name alone: a matrix whose stored
 * shape is the transpose of the expected one is accepted as stored transposed, when the two
 * dimensions differ; when they are equal the format's documented orientation is trusted.
 */
final class WeightFile {
    private final Path file;
    private final Map<String, Tensor> tensors;

    WeightFile(Path file, Map<String, Tensor> tensors) {
        this.file = file;
        this.tensors = tensors;
    }

    Path file() {
        return file;
    }

    boolean has(String name) {
        return tensors.containsKey(name);
    }

    Optional<Tensor> raw(String name) {
        return Optional.ofNullable(tensors.get(name));
    }

    Tensor requireRaw(String name) throws SaeFormatException {
        Tensor t = tensors.get(name);
        if (t == null) {
            throw SaeFormatException.in(file, "no tensor '" + name + "' (found: " + String.join(", ", tensors.keySet()) + ")");
        }
        return t;
    }

    /** The dtype of the first floating tensor, for reporting what is on disk. */
    String storedDtype() {
        return tensors.values().stream().filter(t -> t.dtype().isFloating()).map(t -> t.dtype().name()).findFirst().orElse("F32");
    }

    /**
     * A matrix with logical shape {@code [rows, cols]}.
     *
     * @param storedTransposedByConvention the format documents this tensor as stored {@code [cols, rows]}
     *     (used only when rows == cols and the shape cannot tell)
     */
    Weight matrix(String name, long rows, long cols, boolean storedTransposedByConvention) throws SaeFormatException {
        Tensor t = requireRaw(name);
        long[] s = t.shape();
        boolean transposed;
        if (s.length == 2 && s[0] == rows && s[1] == cols && (rows != cols || !storedTransposedByConvention)) {
            transposed = false;
        } else if (s.length == 2 && s[0] == cols && s[1] == rows) {
            transposed = true;
        } else {
            throw SaeFormatException.in(file, "tensor '" + name + "': expected shape [" + rows + ", " + cols + "] (or its transpose), found "
                    + Arrays.toString(s));
        }
        return new Weight(file.getFileName() + ":" + name, new long[] {rows, cols}, transposed, widen(t));
    }

    /** A vector of length {@code n}. */
    Weight vector(String name, long n) throws SaeFormatException {
        Tensor t = requireRaw(name);
        if (t.elementCount() != n || t.rank() > 2 || (t.rank() == 2 && t.dim(0) != 1 && t.dim(1) != 1)) {
            throw SaeFormatException.in(file, "tensor '" + name + "': expected shape [" + n + "], found " + Arrays.toString(t.shape()));
        }
        return new Weight(file.getFileName() + ":" + name, new long[] {n}, false, widen(t));
    }

    Optional<Weight> optionalVector(String name, long n) throws SaeFormatException {
        return has(name) ? Optional.of(vector(name, n)) : Optional.empty();
    }

    /** A per-feature vector or a scalar (returned as shape [1]). */
    Weight vectorOrScalar(String name, long n) throws SaeFormatException {
        Tensor t = requireRaw(name);
        if (t.elementCount() == 1 && n != 1) {
            return new Weight(file.getFileName() + ":" + name, new long[] {1}, false, widen(t));
        }
        return vector(name, n);
    }

    /**
     * F32 bytes for libtorch: F32 tensors are used in place (a slice of the file's memory map, so no
     * copy on the heap); other float dtypes are widened once into a direct buffer. BF16 never reaches
     * DJL 0.35, whose BF16 arrays crash the JVM (docs/architecture.md#djl-and-pytorch).
     */
    static ByteBuffer widen(Tensor t) throws SaeFormatException {
        if (!t.dtype().isFloating()) {
            throw new SaeFormatException("tensor '" + t.name() + "' has integer dtype " + t.dtype() + ", expected a float dtype");
        }
        if (t.dtype() == DType.F32 && t.bytes().isDirect()) {
            return t.bytes();
        }
        long n = t.elementCount();
        ByteBuffer out = ByteBuffer.allocateDirect(Math.toIntExact(n * 4)).order(ByteOrder.LITTLE_ENDIAN);
        float[] chunk = new float[(int) Math.min(n, 1 << 20)];
        for (long i = 0; i < n; i += chunk.length) {
            int c = (int) Math.min(chunk.length, n - i);
            t.copyFloats(i, chunk, 0, c);
            out.asFloatBuffer().position(Math.toIntExact(i)).put(chunk, 0, c);
        }
        return out;
    }
}
