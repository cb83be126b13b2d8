package io.saeguard.topics.safetensors;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Builds a safetensors container. Tensors are written in the order added, the JSON header is padded
 * with spaces to a multiple of 8 bytes (as the reference implementation does, so every tensor stays
 * 8-byte aligned), and {@code __metadata__} comes first.
 *
 * <p>Not thread-safe; one writer per container.
 */
public final class SafetensorsWriter {
    private static final ObjectMapper JSON = new ObjectMapper();

    private record Entry(String name, DType dtype, long[] shape, ByteBuffer bytes) {
    }

    private final Map<String, String> metadata = new LinkedHashMap<>();
    private final List<Entry> entries = new ArrayList<>();

    /** Adds a {@code __metadata__} entry. */
    public SafetensorsWriter metadata(String key, String value) {
        metadata.put(Objects.requireNonNull(key, "key"), Objects.requireNonNull(value, "value"));
        return this;
    }

    /** Adds all entries of {@code values} to {@code __metadata__}. */
    public SafetensorsWriter metadata(Map<String, String> values) {
        values.forEach(this::metadata);
        return this;
    }

    /** Adds a tensor from raw little-endian bytes; the byte count must match shape × dtype. */
    public SafetensorsWriter add(String name, DType dtype, long[] shape, ByteBuffer littleEndianBytes) {
        Objects.requireNonNull(name, "name");
        if (SafetensorsFile.METADATA_KEY.equals(name)) {
            throw new IllegalArgumentException("a tensor cannot be named " + SafetensorsFile.METADATA_KEY);
        }
        for (Entry e : entries) {
            if (e.name.equals(name)) {
                throw new IllegalArgumentException("tensor '" + name + "' added twice");
            }
        }
        long expected = Tensor.product(shape) * dtype.bytes();
        if (littleEndianBytes.remaining() != expected) {
            throw new IllegalArgumentException("tensor '" + name + "': shape " + java.util.Arrays.toString(shape)
                    + " x " + dtype + " needs " + expected + " bytes, got " + littleEndianBytes.remaining());
        }
        entries.add(new Entry(name, dtype, shape.clone(), littleEndianBytes.slice()));
        return this;
    }

    /** Adds an F32 tensor. */
    public SafetensorsWriter addF32(String name, long[] shape, float[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(values);
        return add(name, DType.F32, shape, b);
    }

    /** Adds an F16 tensor, rounding each value to nearest even. */
    public SafetensorsWriter addF16(String name, long[] shape, float[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 2).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < values.length; i++) {
            b.putShort(2 * i, HalfFloats.floatToF16(values[i]));
        }
        return add(name, DType.F16, shape, b);
    }

    /** Adds a BF16 tensor, rounding each value to nearest even. */
    public SafetensorsWriter addBF16(String name, long[] shape, float[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 2).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < values.length; i++) {
            b.putShort(2 * i, HalfFloats.floatToBf16(values[i]));
        }
        return add(name, DType.BF16, shape, b);
    }

    /** Adds an I32 tensor. */
    public SafetensorsWriter addI32(String name, long[] shape, int[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asIntBuffer().put(values);
        return add(name, DType.I32, shape, b);
    }

    /** Adds an I64 tensor. */
    public SafetensorsWriter addI64(String name, long[] shape, long[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 8).order(ByteOrder.LITTLE_ENDIAN);
        b.asLongBuffer().put(values);
        return add(name, DType.I64, shape, b);
    }

    private byte[] header() {
        // Written with Jackson's streaming generator (the same bytes a tree of the header gives, without building the tree):
        // a load generator writes one of these per record.
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(128 + 96 * entries.size() + 64 * metadata.size());
        try (JsonGenerator g = JSON.getFactory().createGenerator(bytes)) {
            g.writeStartObject();
            if (!metadata.isEmpty()) {
                g.writeObjectFieldStart(SafetensorsFile.METADATA_KEY);
                for (Map.Entry<String, String> m : metadata.entrySet()) {
                    g.writeStringField(m.getKey(), m.getValue());
                }
                g.writeEndObject();
            }
            long offset = 0;
            for (Entry e : entries) {
                g.writeObjectFieldStart(e.name);
                g.writeStringField("dtype", e.dtype.name());
                g.writeArrayFieldStart("shape");
                for (long d : e.shape) {
                    g.writeNumber(d);
                }
                g.writeEndArray();
                long end = offset + e.bytes.remaining();
                g.writeArrayFieldStart("data_offsets");
                g.writeNumber(offset);
                g.writeNumber(end);
                g.writeEndArray();
                g.writeEndObject();
                offset = end;
            }
            g.writeEndObject();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        int length = bytes.size();
        int padded = (length + 7) & ~7;
        for (int i = length; i < padded; i++) {
            bytes.write(' ');
        }
        return bytes.toByteArray();
    }

    /** Serialises the container. */
    public byte[] toBytes() {
        byte[] header = header();
        long total = 8L + header.length;
        for (Entry e : entries) {
            total += e.bytes.remaining();
        }
        ByteBuffer out = ByteBuffer.allocate(Math.toIntExact(total)).order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(header.length).put(header);
        for (Entry e : entries) {
            out.put(e.bytes.duplicate());
        }
        return out.array();
    }

    /** Streams the container to {@code out}. */
    public void writeTo(OutputStream out) throws IOException {
        byte[] header = header();
        ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(header.length);
        out.write(len.array());
        out.write(header);
        byte[] chunk = new byte[1 << 16];
        for (Entry e : entries) {
            ByteBuffer b = e.bytes.duplicate();
            while (b.hasRemaining()) {
                int n = Math.min(chunk.length, b.remaining());
                b.get(chunk, 0, n);
                out.write(chunk, 0, n);
            }
        }
    }

    /** Writes the container to a file. */
    public void writeTo(Path path) throws IOException {
        try (OutputStream out = new java.io.BufferedOutputStream(Files.newOutputStream(path))) {
            writeTo(out);
        }
    }
}
