package io.saeguard.topics.safetensors;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadFeature;
import io.saeguard.topics.safetensors.SafetensorsFile.Header;
import io.saeguard.topics.safetensors.SafetensorsFile.TensorEntry;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads a safetensors header straight from the parser's tokens, without a JSON tree: the sidecar's poll thread parses
 * one header per activation record, and the tree (an {@code ObjectNode} per object, a map entry per field, a
 * duplicate-detection set per object, then the metadata and tensor maps built from it) was its largest cost after
 * Kafka's own record parse (bench/README.md, {@code RecordDecodeBenchmark}).
 *
 * <p>It takes only headers it is sure of: an object whose fields are {@code __metadata__} (an object of strings) and
 * tensor entries (objects of exactly {@code dtype} (a known name), {@code shape} (non-negative integers) and
 * {@code data_offsets} (two integers), in any order) that fit the data section, with no duplicate field. For anything
 * else, malformed or merely unusual (a shape written {@code 2.0}, an extra field in an entry), it answers
 * {@code null} and {@link SafetensorsFile} reads the header through the tree, which then gives the same result or the
 * error with its reason and message. So both paths give the same answer for every header, and only the tree's errors
 * are ever shown. Thread-safe (stateless).
 */
final class FastHeader {
    private static final JsonFactory JSON = JsonFactory.builder().enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build();

    private FastHeader() {}

    /**
     * The header in {@code json[offset, offset + length)}, or {@code null} where the tree must decide.
     *
     * @param dataLength bytes after the header (the data section the entries must fit)
     */
    static Header read(byte[] json, int offset, int length, long dataLength) {
        try (JsonParser p = JSON.createParser(json, offset, length)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                return null;
            }
            Map<String, String> metadata = new LinkedHashMap<>();
            List<TensorEntry> entries = new ArrayList<>();
            String name;
            while ((name = p.nextFieldName()) != null) {
                if (SafetensorsFile.METADATA_KEY.equals(name)) {
                    if (!readMetadata(p, metadata)) {
                        return null;
                    }
                } else {
                    TensorEntry t = readEntry(p, name);
                    if (t == null || !t.fits(dataLength)) {
                        return null;
                    }
                    entries.add(t);
                }
            }
            return p.currentToken() == JsonToken.END_OBJECT ? new Header(metadata, entries) : null;
        } catch (IOException | RuntimeException e) { // malformed JSON, a duplicate field, a number out of range
            return null;
        }
    }

    private static boolean readMetadata(JsonParser p, Map<String, String> out) throws IOException {
        if (p.nextToken() != JsonToken.START_OBJECT) {
            return false;
        }
        String key;
        while ((key = p.nextFieldName()) != null) {
            String value = p.nextTextValue(); // null unless a string
            if (value == null) {
                return false;
            }
            out.put(key, value);
        }
        return p.currentToken() == JsonToken.END_OBJECT;
    }

    private static TensorEntry readEntry(JsonParser p, String name) throws IOException {
        if (p.nextToken() != JsonToken.START_OBJECT) {
            return null;
        }
        DType dtype = null;
        long[] shape = null;
        long[] offsets = null;
        String field;
        while ((field = p.nextFieldName()) != null) {
            switch (field) {
                case "dtype" -> {
                    String d = p.nextTextValue();
                    dtype = d == null ? null : DType.fromName(d).orElse(null);
                    if (dtype == null) {
                        return null;
                    }
                }
                case "shape" -> {
                    shape = longs(p);
                    if (shape == null) {
                        return null;
                    }
                }
                case "data_offsets" -> {
                    offsets = longs(p);
                    if (offsets == null) {
                        return null;
                    }
                }
                default -> {
                    return null;
                }
            }
        }
        if (p.currentToken() != JsonToken.END_OBJECT || dtype == null || shape == null || offsets == null || offsets.length != 2) {
            return null;
        }
        for (long d : shape) {
            if (d < 0) {
                return null;
            }
        }
        return new TensorEntry(name, dtype, shape, offsets[0], offsets[1]);
    }

    /** An array of integers that fit a long; {@code null} for anything else (a float, a string, a big integer). */
    private static long[] longs(JsonParser p) throws IOException {
        if (p.nextToken() != JsonToken.START_ARRAY) {
            return null;
        }
        long[] out = new long[4];
        int n = 0;
        JsonToken t;
        while ((t = p.nextToken()) == JsonToken.VALUE_NUMBER_INT) {
            JsonParser.NumberType type = p.getNumberType();
            if (type != JsonParser.NumberType.INT && type != JsonParser.NumberType.LONG) {
                return null;
            }
            if (n == out.length) {
                out = Arrays.copyOf(out, 2 * n);
            }
            out[n++] = p.getLongValue();
        }
        return t == JsonToken.END_ARRAY ? Arrays.copyOf(out, n) : null;
    }
}
