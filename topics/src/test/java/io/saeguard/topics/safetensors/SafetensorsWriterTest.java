package io.saeguard.topics.safetensors;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The container's layout, checked against a header built independently as a JSON tree. */
class SafetensorsWriterTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String CHARS = "abcXYZ019 _-./:\"\\\t\n\u00e9\u4e2d\ud83d\ude00\u0001";

    @Test
    void headerIsTheCompactJsonOfMetadataThenTensorsPaddedWithSpacesToEightBytes() throws Exception {
        SplittableRandom rnd = new SplittableRandom(11);
        for (int round = 0; round < 300; round++) {
            // Given random metadata (escapes, non-ASCII, control characters) and tensors of random shapes
            SafetensorsWriter w = new SafetensorsWriter();
            Map<String, String> metadata = new LinkedHashMap<>();
            for (int i = rnd.nextInt(4); i > 0; i--) {
                metadata.put(text(rnd), text(rnd));
            }
            w.metadata(metadata);
            ObjectNode expected = JSON.createObjectNode();
            if (!metadata.isEmpty()) {
                ObjectNode md = expected.putObject("__metadata__");
                metadata.forEach(md::put);
            }
            long offset = 0;
            int tensors = rnd.nextInt(4);
            ByteBuffer data = ByteBuffer.allocate(1 << 12).order(ByteOrder.LITTLE_ENDIAN);
            for (int t = 0; t < tensors; t++) {
                long[] shape = new long[rnd.nextInt(3)];
                for (int d = 0; d < shape.length; d++) {
                    shape[d] = 1 + rnd.nextInt(5);
                }
                float[] values = new float[(int) Tensor.product(shape)];
                for (int i = 0; i < values.length; i++) {
                    values[i] = (float) rnd.nextGaussian();
                    data.putFloat(values[i]);
                }
                String name = "t" + t + text(rnd);
                w.addF32(name, shape, values);
                ObjectNode e = expected.putObject(name);
                e.put("dtype", "F32");
                Arrays.stream(shape).forEach(e.putArray("shape")::add);
                e.putArray("data_offsets").add(offset).add(offset + 4L * values.length);
                offset += 4L * values.length;
            }

            // When the container is written
            byte[] out = w.toBytes();

            // Then: 8-byte length, the tree's compact JSON padded with spaces to a multiple of 8, then the data in order
            ByteBuffer b = ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN);
            int headerLength = Math.toIntExact(b.getLong());
            byte[] json = JSON.writeValueAsBytes(expected);
            assertThat(headerLength % 8).isZero();
            assertThat(headerLength).isBetween(json.length, json.length + 7);
            assertThat(Arrays.copyOfRange(out, 8, 8 + json.length)).as("round %d", round).isEqualTo(json);
            for (int i = 8 + json.length; i < 8 + headerLength; i++) {
                assertThat(out[i]).isEqualTo((byte) ' ');
            }
            assertThat(Arrays.copyOfRange(out, 8 + headerLength, out.length)).isEqualTo(Arrays.copyOf(data.array(), data.position()));
            // and the reader gives the metadata back
            assertThat(SafetensorsFile.parse(ByteBuffer.wrap(out)).metadata()).isEqualTo(metadata);
            assertThat(new String(json, StandardCharsets.UTF_8)).doesNotContain("\n");
        }
    }

    private static String text(SplittableRandom rnd) {
        StringBuilder sb = new StringBuilder();
        for (int i = rnd.nextInt(6); i > 0; i--) {
            int c = CHARS.codePointAt(CHARS.offsetByCodePoints(0, rnd.nextInt(CHARS.codePointCount(0, CHARS.length()))));
            sb.appendCodePoint(c);
        }
        return sb.toString();
    }
}
