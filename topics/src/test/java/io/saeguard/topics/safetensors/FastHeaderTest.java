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
            // Given: names and metadata of printable ASCII that needs no escape, tensors of every dtype, entry fields in any
            // order, whitespace wherever JSON allows it
            Generated g = header(random, ASCII);

            // When
            Header fast = FastHeader.read(g.json(), 0, g.json().length, g.dataLength());
            Header tree = tree(g.json(), g.dataLength());

            // Then
            assertThat(fast).as("seed %d, header %s", SEED, g.text()).isNotNull();
            assertSame(fast, tree, g.text());
        }
    }

    @Test
    void headersWithEscapesOrNonAsciiTextAreLeftToTheTreeOrReadAsItReadsThem() throws Exception {
        Random random = new Random(SEED);
        int deferred = 0;
        for (int i = 0; i < 500; i++) {
            // Given: text with what JSON escapes and what UTF-8 writes in several bytes
            Generated g = header(random, ANY);

            // When
            Header fast = FastHeader.read(g.json(), 0, g.json().length, g.dataLength());
            Header tree = tree(g.json(), g.dataLength());

            // Then
            if (fast == null) {
                deferred++;
                assertThat(g.text().chars().anyMatch(c -> c == '\\' || c > 0x7e)).as("seed %d: a plain ASCII header must be taken: %s", SEED, g.text()).isTrue();
            } else {
                assertSame(fast, tree, g.text());
            }
        }
        assertThat(deferred).as("seed %d: some headers had escapes or non-ASCII text", SEED).isPositive();
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
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]}}", // a leading zero: the tree refuses
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[-0, 2],\"data_offsets\":[0,8]}}",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2e0],\"data_offsets\":[0,8]}}",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,],\"data_offsets\":[0,8]}}",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[,2],\"data_offsets\":[0,8]}}",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2 2],\"data_offsets\":[0,8]}}",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[-],\"data_offsets\":[0,8]}}",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-9223372036854775808,8]}}",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,9223372036854775808]}}",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[9223372036854775807],\"data_offsets\":[0,8]}}",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[18446744073709551618],\"data_offsets\":[0,8]}}", // 2^64 + 2 wraps to 2
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-18446744073709551616,8]}}",
                "{\"a\":{\"dtype\":\"I8\",\"shape\":[ ],\"data_offsets\":[0,1]}}",
                "{\"a\":{},\"b\":" + ok + "}",
                "{\"a\" \t\r\n: " + ok + " }",
                "{\"__metadata__\":{},\"__metadata__\":{}}",
                "{\"__metadata__\":{\"k\":\"tab\there\"}}", // a raw control character: the tree refuses
                "{\"__metadata__\":{\"k\":\"caf\u00e9\"}}",
                "{\"__metadata__\":{\"k\":\"a\\u0041\"}}",
                "{\"__metadata__\":{\"k\":\"v\"},}",
                "{\"__metadata__\":{\"k\" \"v\"}}",
                "\ufeff{\"a\":" + ok + "}",
                "{\"a\":" + ok + "}\u0000",
                "{" + java.util.stream.IntStream.range(0, FastHeader.MAX_ENTRIES + 1)
                        .mapToObj(t -> "\"t" + t + "\":{\"dtype\":\"I8\",\"shape\":[0],\"data_offsets\":[0,0]}").collect(java.util.stream.Collectors.joining(",")) + "}",
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

    private static final String[] ASCII = {"a", "Z", "'", "/", " ", "0", "~", "{", "}", ":", ","};
    /** What JSON escapes and what UTF-8 writes in several bytes, too. */
    private static final String[] ANY = {"a", "Z", "\"", "\\", "\n", "\u00e9", "\u4e2d", "\ud83d\ude00", "/", " ", "\t", "0"};

    private record Generated(String text, byte[] json, long dataLength) {
    }

    /** A well-formed header of random metadata and tensor entries (fields in any order), its strings made of {@code parts}. */
    private static Generated header(Random random, String[] parts) throws Exception {
        StringBuilder h = new StringBuilder(space(random)).append("{");
        List<String> fields = new ArrayList<>();
        int metadata = random.nextInt(5);
        if (metadata > 0) {
            List<String> md = new ArrayList<>();
            for (int m = 0; m < metadata; m++) {
                md.add(JSON.writeValueAsString("k" + m + text(random, parts)) + space(random) + ":" + space(random)
                        + JSON.writeValueAsString(text(random, parts)));
            }
            fields.add("\"__metadata__\":" + space(random) + "{" + space(random) + String.join("," + space(random), md) + space(random) + "}");
        }
        long offset = 0;
        for (int t = 0, n = 1 + random.nextInt(4); t < n; t++) {
            DType dtype = DType.values()[random.nextInt(DType.values().length)];
            long[] shape = new long[random.nextInt(4)];
            long size = dtype.bytes();
            for (int d = 0; d < shape.length; d++) {
                shape[d] = random.nextInt(6) + (random.nextInt(4) == 0 ? 1000 : 0);
                size *= shape[d];
            }
            List<String> entry = new ArrayList<>(List.of("\"dtype\":" + space(random) + "\"" + dtype + "\"",
                    "\"shape\":" + JSON.writeValueAsString(shape).replace(",", "," + space(random)),
                    "\"data_offsets\":[" + space(random) + offset + "," + space(random) + (offset + size) + space(random) + "]"));
            Collections.shuffle(entry, random);
            fields.add(JSON.writeValueAsString("t" + t + text(random, parts)) + space(random) + ":{" + String.join("," + space(random), entry) + "}");
            offset += size;
        }
        Collections.shuffle(fields, random);
        h.append(String.join("," + space(random), fields)).append(space(random)).append("}").append(" ".repeat(random.nextInt(8)));
        return new Generated(h.toString(), h.toString().getBytes(StandardCharsets.UTF_8), offset);
    }

    private static String text(Random random, String[] parts) {
        StringBuilder b = new StringBuilder();
        for (int i = 0, n = random.nextInt(6); i < n; i++) {
            b.append(parts[random.nextInt(parts.length)]);
        }
        return b.toString();
    }

    private static String space(Random random) {
        return random.nextBoolean() ? "" : " \n\t\r".substring(0, 1 + random.nextInt(4));
    }
}
