package io.saeguard.topics.safetensors;

import io.saeguard.topics.safetensors.SafetensorsFile.Header;
import io.saeguard.topics.safetensors.SafetensorsFile.TensorEntry;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads a safetensors header straight from its bytes, without a JSON parser: the sidecar's poll thread reads one header
 * per activation record, and a Jackson parser per record (its creation, its symbol table, its text buffers) was the
 * largest part of the poll thread's own work after Kafka's record parse (bench/README.md, {@code RecordDecodeBenchmark}).
 *
 * <p>It takes only headers it is sure of: an object whose fields are {@code __metadata__} (an object of strings) and
 * at most {@value #MAX_ENTRIES} tensor entries (objects of exactly {@code dtype} (a known name), {@code shape}
 * (non-negative integers) and {@code data_offsets} (two integers), in any order) that fit the data section, with no
 * duplicate field, every string printable ASCII without escapes, and nothing but whitespace after the object. For
 * anything else, malformed or merely unusual (a shape written {@code 2.0}, an extra field in an entry, an escape or a
 * non-ASCII character in a string), it answers {@code null} and {@link SafetensorsFile} reads the header through the
 * JSON tree, which then gives the same result or the error with its reason and message. So both paths give the same
 * answer for every header, and only the tree's errors are ever shown. Thread-safe: each {@link #read} scans with a
 * scanner of its own.
 */
final class FastHeader {
    /** More tensors than this defer to the tree (duplicate names are checked by a scan of those read so far). */
    static final int MAX_ENTRIES = 32;
    private static final byte[] METADATA = SafetensorsFile.METADATA_KEY.getBytes(StandardCharsets.US_ASCII);
    private static final byte[] DTYPE = "dtype".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] SHAPE = "shape".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] DATA_OFFSETS = "data_offsets".getBytes(StandardCharsets.US_ASCII);
    private static final DType[] DTYPES = DType.values();
    private static final byte[][] DTYPE_NAMES = Arrays.stream(DTYPES).map(d -> d.name().getBytes(StandardCharsets.US_ASCII)).toArray(byte[][]::new);

    private final byte[] b;
    private final int end;
    private int i;
    /** Where the text of the string {@link #string} last read ends (its closing quote). */
    private int stringEnd;

    private FastHeader(byte[] json, int offset, int length) {
        this.b = json;
        this.i = offset;
        this.end = offset + length;
    }

    /**
     * The header in {@code json[offset, offset + length)}, or {@code null} where the tree must decide.
     *
     * @param dataLength bytes after the header (the data section the entries must fit)
     */
    static Header read(byte[] json, int offset, int length, long dataLength) {
        return new FastHeader(json, offset, length).header(dataLength);
    }

    private Header header(long dataLength) {
        if (!skipTo('{')) {
            return null;
        }
        Map<String, String> metadata = null;
        List<TensorEntry> entries = new ArrayList<>(2);
        if (!skipTo('}')) {
            do {
                int name = field();
                if (name < 0) {
                    return null;
                }
                if (equals(name, stringEnd, METADATA)) {
                    if (metadata != null || (metadata = metadata()) == null) {
                        return null; // given twice (the tree's duplicate-field error), or not an object of strings
                    }
                } else if (!addEntry(entries, ascii(name, stringEnd), dataLength)) {
                    return null;
                }
            } while (skipTo(','));
            if (!skipTo('}')) {
                return null;
            }
        }
        skipWhitespace();
        return i == end ? new Header(metadata != null ? metadata : new LinkedHashMap<>(), entries) : null;
    }

    /** Reads the entry called {@code name} into {@code entries}; false when the tree must decide. */
    private boolean addEntry(List<TensorEntry> entries, String name, long dataLength) {
        if (entries.size() == MAX_ENTRIES) {
            return false;
        }
        for (TensorEntry e : entries) {
            if (e.name().equals(name)) {
                return false;
            }
        }
        TensorEntry t = entry(name);
        return t != null && t.fits(dataLength) && entries.add(t);
    }

    /** {@code {"key": "value", ...}} of strings; null for anything else or a duplicate key. */
    private Map<String, String> metadata() {
        if (!skipTo('{')) {
            return null;
        }
        Map<String, String> out = new LinkedHashMap<>();
        if (skipTo('}')) {
            return out;
        }
        do {
            int keyStart = field();
            if (keyStart < 0) {
                return null;
            }
            String key = ascii(keyStart, stringEnd);
            int valueStart = string();
            if (valueStart < 0 || out.put(key, ascii(valueStart, stringEnd)) != null) {
                return null;
            }
        } while (skipTo(','));
        return skipTo('}') ? out : null;
    }

    /** An entry of exactly dtype, shape and data_offsets, each once; null for anything else. */
    private TensorEntry entry(String name) {
        if (!skipTo('{')) {
            return null;
        }
        DType dtype = null;
        long[] shape = null;
        long[] offsets = null;
        do {
            int fieldStart = field();
            if (fieldStart < 0) {
                return null; // also an empty entry: the tree's "no dtype"
            }
            int fieldEnd = stringEnd;
            if (equals(fieldStart, fieldEnd, DTYPE) && dtype == null) {
                dtype = dtype();
                if (dtype == null) {
                    return null;
                }
            } else if (equals(fieldStart, fieldEnd, SHAPE) && shape == null) {
                shape = longs();
                if (shape == null) {
                    return null;
                }
            } else if (equals(fieldStart, fieldEnd, DATA_OFFSETS) && offsets == null) {
                offsets = longs();
                if (offsets == null) {
                    return null;
                }
            } else {
                return null; // another field, or one given twice
            }
        } while (skipTo(','));
        if (!skipTo('}') || dtype == null || shape == null || offsets == null || offsets.length != 2) {
            return null;
        }
        for (long d : shape) {
            if (d < 0) {
                return null;
            }
        }
        return new TensorEntry(name, dtype, shape, offsets[0], offsets[1]);
    }

    private DType dtype() {
        int start = string();
        if (start < 0) {
            return null;
        }
        for (int d = 0; d < DTYPES.length; d++) {
            if (equals(start, stringEnd, DTYPE_NAMES[d])) {
                return DTYPES[d];
            }
        }
        return null;
    }

    /** {@code [n, ...]} of integers that fit a long (no fraction, no exponent, no leading zero); null for anything else. */
    private long[] longs() {
        if (!skipTo('[')) {
            return null;
        }
        long[] out = new long[4];
        int n = 0;
        if (skipTo(']')) {
            return new long[0];
        }
        do {
            if (skipWhitespace() == end) {
                return null;
            }
            boolean negative = b[i] == '-';
            if (negative) {
                i++;
            }
            int digitsStart = i;
            long v = 0;
            while (i < end && b[i] >= '0' && b[i] <= '9') {
                int digit = b[i++] - '0';
                // Accumulate negatively so that Long.MIN_VALUE fits; an overflow defers to the tree.
                if (v < (Long.MIN_VALUE + digit) / 10) {
                    return null;
                }
                v = v * 10 - digit;
            }
            int digits = i - digitsStart;
            if (digits == 0 || (digits > 1 && b[digitsStart] == '0')
                    || (i < end && (b[i] == '.' || b[i] == 'e' || b[i] == 'E'))) {
                return null;
            }
            if (!negative) {
                if (v == Long.MIN_VALUE) {
                    return null;
                }
                v = -v;
            }
            if (n == out.length) {
                out = Arrays.copyOf(out, 2 * n);
            }
            out[n++] = v;
        } while (skipTo(','));
        return skipTo(']') ? Arrays.copyOf(out, n) : null;
    }

    /**
     * A string at {@code i} (after whitespace): moves past its closing quote and returns where its text starts, or -1
     * when there is none or it holds an escape, a control character or a byte outside printable ASCII.
     */
    private int string() {
        if (skipWhitespace() == end || b[i] != '"') {
            return -1;
        }
        int start = ++i;
        while (i < end) {
            byte c = b[i++];
            if (c == '"') {
                stringEnd = i - 1;
                return start;
            }
            if (c < 0x20 || c > 0x7e || c == '\\') {
                return -1;
            }
        }
        return -1;
    }

    /** A field name and its colon: where the name's text starts ({@link #stringEnd} its end), or -1. */
    private int field() {
        int start = string();
        return start >= 0 && skipTo(':') ? start : -1;
    }

    /** Skips whitespace and then {@code c} if it comes next (true); otherwise stops after the whitespace (false). */
    private boolean skipTo(char c) {
        if (skipWhitespace() < end && b[i] == c) {
            i++;
            return true;
        }
        return false;
    }

    private int skipWhitespace() {
        while (i < end) {
            byte c = b[i];
            if (c != ' ' && c != '\n' && c != '\r' && c != '\t') {
                break;
            }
            i++;
        }
        return i;
    }

    private boolean equals(int from, int to, byte[] expected) {
        return Arrays.equals(b, from, to, expected, 0, expected.length);
    }

    private String ascii(int from, int to) {
        return new String(b, from, to - from, StandardCharsets.ISO_8859_1);
    }
}
