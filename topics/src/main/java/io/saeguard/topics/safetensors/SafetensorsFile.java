package io.saeguard.topics.safetensors;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.saeguard.topics.DecodeException;
import io.saeguard.topics.DecodeException.Reason;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A parsed safetensors container: an 8-byte little-endian header length, a JSON header, then the
 * tensors' bytes (https://github.com/huggingface/safetensors, "Format"). Parsing validates every
 * tensor entry against the data section and never copies tensor bytes.
 *
 * <p>Every defect is a {@link DecodeException} whose message names the byte offset or tensor, so a
 * dead-lettered record can be diagnosed from its headers alone.
 */
public final class SafetensorsFile {
    /** The format caps the JSON header at 100 MB; a longer claim is corrupt input, not a big header. */
    static final long MAX_HEADER_BYTES = 100L * 1024 * 1024;
    static final String METADATA_KEY = "__metadata__";
    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    private final Map<String, String> metadata;
    private final Map<String, Tensor> tensors;

    private SafetensorsFile(Map<String, String> metadata, Map<String, Tensor> tensors) {
        this.metadata = Collections.unmodifiableMap(metadata);
        this.tensors = Collections.unmodifiableMap(tensors);
    }

    /** Parses a whole record; tensors are views of {@code bytes}, which must not be modified afterwards. */
    public static SafetensorsFile parse(byte[] bytes) throws DecodeException {
        return parse(ByteBuffer.wrap(bytes));
    }

    /** Parses the remaining bytes of {@code buffer}; tensors are views of it. */
    public static SafetensorsFile parse(ByteBuffer buffer) throws DecodeException {
        ByteBuffer buf = buffer.slice().order(ByteOrder.LITTLE_ENDIAN);
        long total = buf.remaining();
        long headerLength = readHeaderLength(buf, total);
        int headerStart = 8;
        int dataStart = Math.toIntExact(headerStart + headerLength);
        long dataLength = total - dataStart;
        ByteBuffer data = buf.duplicate().position(dataStart).slice().order(ByteOrder.LITTLE_ENDIAN);
        IoFunction slicer = (begin, end) -> data.duplicate().position(Math.toIntExact(begin)).limit(Math.toIntExact(end)).slice();
        Header fast = buf.hasArray() ? FastHeader.read(buf.array(), buf.arrayOffset() + headerStart, (int) headerLength, dataLength) : null;
        try {
            return slice(fast != null ? fast : readHeader(parseHeader(buf, headerStart, (int) headerLength), dataLength), slicer);
        } catch (IOException e) {
            throw new IllegalStateException("slicing a heap buffer failed", e); // a view of memory cannot fail to be read
        }
    }

    /**
     * Opens a file by memory-mapping each tensor separately, so files over 2 GB (whose tensors are
     * each under 2 GB) load without copying.
     */
    public static SafetensorsFile open(Path path) throws IOException, DecodeException {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long total = ch.size();
            ByteBuffer prefix = ByteBuffer.allocate((int) Math.min(8, total)).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, prefix, 0);
            prefix.flip();
            long headerLength = readHeaderLength(prefix, total);
            ByteBuffer headerBytes = ByteBuffer.allocate((int) headerLength);
            readFully(ch, headerBytes, 8);
            headerBytes.flip();
            long dataStart = 8 + headerLength;
            Header fast = FastHeader.read(headerBytes.array(), 0, (int) headerLength, total - dataStart);
            Header header = fast != null ? fast : readHeader(parseHeader(headerBytes, 0, (int) headerLength), total - dataStart);
            return slice(header, (begin, end) -> ch.map(FileChannel.MapMode.READ_ONLY, dataStart + begin, end - begin));
        } catch (DecodeException e) {
            throw new DecodeException(e.reason(), path + ": " + e.getMessage(), e);
        }
    }

    private static void readFully(FileChannel ch, ByteBuffer dst, long position) throws IOException {
        long pos = position;
        while (dst.hasRemaining()) {
            int n = ch.read(dst, pos);
            if (n < 0) {
                break;
            }
            pos += n;
        }
    }

    private static long readHeaderLength(ByteBuffer buf, long total) throws DecodeException {
        if (total < 8) {
            throw new DecodeException(Reason.TRUNCATED_HEADER, "safetensors: record is " + total
                    + " bytes, shorter than the 8-byte header length prefix at byte 0");
        }
        long n = buf.getLong(0);
        if (n < 2 || n > total - 8 || n > MAX_HEADER_BYTES) {
            throw new DecodeException(Reason.HEADER_LENGTH_PAST_END, "safetensors: header length "
                    + Long.toUnsignedString(n) + " (u64 LE at byte 0) points past the end of the record: "
                    + total + " bytes leave at most " + (total - 8) + " for the header");
        }
        return n;
    }

    static ObjectNode parseHeader(ByteBuffer buf, int offset, int length) throws DecodeException {
        byte[] json = new byte[length];
        buf.duplicate().position(offset).get(json);
        JsonNode node;
        try {
            node = JSON.readTree(json);
        } catch (JsonProcessingException e) {
            throw new DecodeException(Reason.MALFORMED_HEADER, "safetensors: JSON header at bytes [8, "
                    + (8 + length) + ") is not valid JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new DecodeException(Reason.MALFORMED_HEADER, "safetensors: JSON header unreadable: " + e.getMessage(), e);
        }
        if (node == null || !node.isObject()) {
            throw new DecodeException(Reason.MALFORMED_HEADER, "safetensors: JSON header at bytes [8, "
                    + (8 + length) + ") must be an object, found " + (node == null ? "nothing" : node.getNodeType()));
        }
        return (ObjectNode) node;
    }

    @FunctionalInterface
    private interface IoFunction {
        ByteBuffer slice(long begin, long end) throws IOException;
    }

    /** A header read and checked against the data section: its metadata and tensor entries, in header order. */
    record Header(Map<String, String> metadata, List<TensorEntry> entries) {
    }

    private static SafetensorsFile slice(Header header, IoFunction slicer) throws IOException {
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        for (TensorEntry t : header.entries()) {
            tensors.put(t.name, new Tensor(t.name, t.dtype, t.shape, slicer.slice(t.begin, t.end)));
        }
        return new SafetensorsFile(header.metadata(), tensors);
    }

    /** The header from its JSON tree: every check, and the error a defect gets ({@link FastHeader} defers to it). */
    static Header readHeader(ObjectNode header, long dataLength) throws DecodeException {
        Map<String, String> metadata = new LinkedHashMap<>();
        List<TensorEntry> entries = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (METADATA_KEY.equals(e.getKey())) {
                readMetadata(e.getValue(), metadata);
                continue;
            }
            entries.add(readEntry(e.getKey(), e.getValue(), dataLength));
        }
        return new Header(metadata, entries);
    }

    private static void readMetadata(JsonNode node, Map<String, String> out) throws DecodeException {
        if (!node.isObject()) {
            throw new DecodeException(Reason.MALFORMED_HEADER,
                    "safetensors: __metadata__ must be an object of string to string, found " + node.getNodeType());
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!e.getValue().isTextual()) {
                throw new DecodeException(Reason.MALFORMED_HEADER, "safetensors: __metadata__ entry '" + e.getKey()
                        + "' must be a string, found " + e.getValue().getNodeType());
            }
            out.put(e.getKey(), e.getValue().textValue());
        }
    }

    record TensorEntry(String name, DType dtype, long[] shape, long begin, long end) {
        /** Whether the entry fits a data section of {@code dataLength} bytes and its byte range is its shape's size. */
        boolean fits(long dataLength) {
            return begin >= 0 && end >= begin && end <= dataLength && expectedBytes(dtype, shape) == end - begin;
        }
    }

    /** {@code product(shape) x dtype.bytes()}, or -1 when that overflows a long. */
    static long expectedBytes(DType dtype, long[] shape) {
        try {
            return Math.multiplyExact(Tensor.product(shape), dtype.bytes());
        } catch (ArithmeticException overflow) {
            return -1;
        }
    }

    private static TensorEntry readEntry(String name, JsonNode node, long dataLength) throws DecodeException {
        String where = "safetensors: tensor '" + name + "'";
        if (!node.isObject()) {
            throw new DecodeException(Reason.MALFORMED_HEADER, where + " must be an object with dtype, shape and data_offsets");
        }
        JsonNode dtypeNode = node.get("dtype");
        if (dtypeNode == null || !dtypeNode.isTextual()) {
            throw new DecodeException(Reason.MALFORMED_HEADER, where + " has no string 'dtype'");
        }
        DType dtype = DType.fromName(dtypeNode.textValue()).orElseThrow(() -> new DecodeException(Reason.UNKNOWN_DTYPE,
                where + ": unknown dtype '" + dtypeNode.textValue() + "' (supported: " + DType.supportedNames() + ")"));
        JsonNode shapeNode = node.get("shape");
        if (shapeNode == null || !shapeNode.isArray()) {
            throw new DecodeException(Reason.MALFORMED_HEADER, where + " has no array 'shape'");
        }
        long[] shape = new long[shapeNode.size()];
        for (int i = 0; i < shape.length; i++) {
            JsonNode d = shapeNode.get(i);
            if (!d.canConvertToExactIntegral() || !d.canConvertToLong() || d.asLong() < 0) {
                throw new DecodeException(Reason.MALFORMED_HEADER, where + ": shape[" + i + "] must be a non-negative integer, found " + d);
            }
            shape[i] = d.asLong();
        }
        JsonNode offsets = node.get("data_offsets");
        if (offsets == null || !offsets.isArray() || offsets.size() != 2
                || !offsets.get(0).canConvertToExactIntegral() || !offsets.get(1).canConvertToExactIntegral()) {
            throw new DecodeException(Reason.MALFORMED_HEADER, where + " needs 'data_offsets' [begin, end] as two integers");
        }
        long begin = offsets.get(0).asLong();
        long end = offsets.get(1).asLong();
        if (begin < 0 || end < begin || end > dataLength) {
            throw new DecodeException(Reason.SIZE_MISMATCH, where + ": data_offsets [" + begin + ", " + end
                    + "] fall outside the data section of " + dataLength + " bytes");
        }
        long expected = expectedBytes(dtype, shape);
        if (expected != end - begin) {
            throw new DecodeException(Reason.SIZE_MISMATCH, where + ": shape " + java.util.Arrays.toString(shape)
                    + " x " + dtype + " (" + dtype.bytes() + " bytes) = " + (expected < 0 ? "overflow" : expected + " bytes")
                    + " but data_offsets [" + begin + ", " + end + "] hold " + (end - begin) + " bytes");
        }
        return new TensorEntry(name, dtype, shape, begin, end);
    }

    /** The {@code __metadata__} entries (string to string), in header order. */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** The tensor with this name, if present. */
    public Optional<Tensor> tensor(String name) {
        return Optional.ofNullable(tensors.get(name));
    }

    /** Tensors in header order. */
    public Collection<Tensor> tensors() {
        return tensors.values();
    }

    /** Tensor names in header order. */
    public java.util.Set<String> names() {
        return tensors.keySet();
    }
}
