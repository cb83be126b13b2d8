package io.saeguard.topics.safetensors;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.saeguard.topics.DecodeException;
import io.saeguard.topics.safetensors.SafetensorsFile.Header;
import io.saeguard.topics.safetensors.SafetensorsFile.TensorEntry;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The tree-less header read ({@link FastHeader}) against the JSON tree ({@link SafetensorsFile#readHeader}): it must
 * take the common headers, and for every header it takes give the tree's answer; on anything the tree refuses it must
 * defer to the tree (answer null), so that only the tree's errors are shown.
 */
class FastHeaderTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long SEED = Long.getLong("saeguard.test.seed", System.nanoTime());

    @Test
    void randomWellFormedHeadersAreTakenAndReadAsTheTreeReadsThem() throws Exception {
        Random random = new Random(SEED);
        for (int i = 0; i < 500; i++) {
            // Given: metadata with escapes and non-ASCII text, tensors of every dtype, entry fields in any order
            StringBuilder h = new StringBuilder("{");
            List<String> fields = new ArrayList<>();
            int metadata = random.nextInt(5);
            if (metadata > 0) {
                List<String> md = new ArrayList<>();
                for (int m = 0; m < metadata; m++) {
                    md.add(JSON.writeValueAsString("k" + m + text(random)) + ":" + JSON.writeValueAsString(text(random)));
                }
                fields.add("\"__metadata__\":" + space(random) + "{" + String.join("," + space(random), md) + "}");
            }
            long offset = 0;
            for (int t = 0, n = 1 + random.nextInt(4); t < n; t++) {
                DType dtype = DType.values()[random.nextInt(DType.values().length)];
                long[] shape = new long[random.nextInt(4)];
                long size = dtype.bytes();
                for (int d = 0; d < shape.length; d++) {
                    shape[d] = random.nextInt(6);
                    size *= shape[d];
                }
                List<String> entry = new ArrayList<>(List.of("\"dtype\":\"" + dtype + "\"", "\"shape\":" + JSON.writeValueAsString(shape),
                        "\"data_offsets\":[" + offset + "," + space(random) + (offset + size) + "]"));
                Collections.shuffle(entry, random);
                fields.add(JSON.writeValueAsString("t" + t + text(random)) + ":{" + String.join(",", entry) + "}");
                offset += size;
            }
            Collections.shuffle(fields, random);
            h.append(String.join("," + space(random), fields)).append("}").append(" ".repeat(random.nextInt(8)));
            byte[] json = h.toString().getBytes(StandardCharsets.UTF_8);

            // When
            Header fast = FastHeader.read(json, 0, json.length, offset);
            Header tree = tree(json, offset);

            // Then
            assertThat(fast).as("seed %d, header %s", SEED, h).isNotNull();
            assertSame(fast, tree, h.toString());
        }
    }

    @Test
    void whatTheTreeRefusesOrReadsOtherwiseIsLeftToTheTree() throws Exception {
        String ok = "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";
        List<String> headers = List.of(
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", // the tree takes 2.0 as 2
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"extra\":1}}", // the tree ignores extra fields
                "{\"a\":" + ok + ",\"a\":" + ok + "}",
                "{\"__metadata__\":{\"k\":\"v\",\"k\":\"w\"},\"a\":" + ok + "}",
                "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                "{\"__metadata__\":{\"k\":1}}",
                "{\"__metadata__\":{\"k\":{\"nested\":\"x\"}}}",
                "{\"__metadata__\":[\"k\"]}",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,9]}}",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", // past the 8-byte data section
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}",
                "{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,8]}}",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904, 4],\"data_offsets\":[0,8]}}", // overflow
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}",
                "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}",
                "{\"a\":[1, 2]}",
                "{\"a\":" + ok + "} trailing",
                "{\"a\":" + ok + "}}",
                "{}", "   ", "[]", "\"text\"", "null", "{\"a\":", "{\"a\":" + ok);
        for (String h : headers) {
            byte[] json = h.getBytes(StandardCharsets.UTF_8);
            Header fast = FastHeader.read(json, 0, json.length, 8);
            Header tree;
            try {
                tree = tree(json, 8);
            } catch (DecodeException e) {
                assertThat(fast).as("the tree refuses %s (%s), so must the fast read", h, e.getMessage()).isNull();
                continue;
            }
            if (fast != null) {
                assertSame(fast, tree, h);
            }
        }
    }

    @Test
    void aHeaderInsideALargerArrayIsReadFromItsOwnBytesOnly() throws Exception {
        byte[] json = "xx{\"a\":{\"dtype\":\"I8\",\"shape\":[3],\"data_offsets\":[0,3]}}yy".getBytes(StandardCharsets.UTF_8);

        Header fast = FastHeader.read(json, 2, json.length - 4, 3);

        assertThat(fast).isNotNull();
        assertThat(fast.entries()).singleElement().satisfies(t -> {
            assertThat(t.name()).isEqualTo("a");
            assertThat(t.dtype()).isEqualTo(DType.I8);
            assertThat(t.shape()).containsExactly(3);
            assertThat(t.end()).isEqualTo(3);
        });
    }

    private static Header tree(byte[] json, long dataLength) throws DecodeException {
        return SafetensorsFile.readHeader(SafetensorsFile.parseHeader(ByteBuffer.wrap(json), 0, json.length), dataLength);
    }

    private static void assertSame(Header fast, Header tree, String header) {
        assertThat(List.copyOf(fast.metadata().entrySet())).as(header).containsExactlyElementsOf(List.copyOf(tree.metadata().entrySet()));
        assertThat(fast.entries()).as(header).hasSameSizeAs(tree.entries());
        for (int i = 0; i < tree.entries().size(); i++) {
            TensorEntry f = fast.entries().get(i);
            TensorEntry t = tree.entries().get(i);
            assertThat(f.name()).as(header).isEqualTo(t.name());
            assertThat(f.dtype()).as(header).isEqualTo(t.dtype());
            assertThat(f.shape()).as(header).containsExactly(t.shape());
            assertThat(new long[] {f.begin(), f.end()}).as(header).containsExactly(t.begin(), t.end());
        }
    }

    /** Text with what JSON escapes and what UTF-8 writes in several bytes. */
    private static String text(Random random) {
        String[] parts = {"a", "Z", "\"", "\\", "\n", "\u00e9", "\u4e2d", "\ud83d\ude00", "/", " ", "\t", "0"};
        StringBuilder b = new StringBuilder();
        for (int i = 0, n = random.nextInt(6); i < n; i++) {
            b.append(parts[random.nextInt(parts.length)]);
        }
        return b.toString();
    }

    private static String space(Random random) {
        return random.nextBoolean() ? "" : " \n".substring(0, 1 + random.nextInt(2));
    }
}
