package io.saeguard.topics.safetensors;

import static org.assertj.core.api.Assertions.assertThat;
import static io.saeguard.topics.DecodeAssertions.assertDecodeError;

import io.saeguard.topics.DecodeException.Reason;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsFileTest {
    private static final long SEED = new Random().nextLong();

    static {
        System.out.println("SafetensorsFileTest seed=" + SEED);
    }

    /** A container assembled by hand, so malformed variants can be built. */
    static byte[] container(String headerJson, byte[] data) {
        byte[] h = headerJson.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN)
                .putLong(h.length).put(h).put(data).array();
    }

    @Test
    void writtenContainerReadsBackEveryDtypeShapeAndMetadata() throws Exception {
        // Given random tensors of every writable dtype
        Random r = new Random(SEED);
        float[] f = new float[6];
        for (int i = 0; i < f.length; i++) {
            f[i] = (float) r.nextGaussian();
        }
        byte[] bytes = new SafetensorsWriter().metadata("k", "v").addF32("f32", new long[] {2, 3}, f)
                .addF16("f16", new long[] {6}, f).addBF16("bf16", new long[] {3, 2}, f)
                .addI32("i32", new long[] {2}, new int[] {-7, 1 << 30}).addI64("i64", new long[] {1}, new long[] {1L << 40})
                .toBytes();

        // When it is parsed
        SafetensorsFile file = SafetensorsFile.parse(bytes);

        // Then everything is back, half floats within their rounding
        assertThat(file.metadata()).containsEntry("k", "v");
        assertThat(file.names()).containsExactly("f32", "f16", "bf16", "i32", "i64");
        assertThat(file.tensor("f32").orElseThrow().toFloatArray()).containsExactly(f);
        assertThat(file.tensor("f32").orElseThrow().shape()).containsExactly(2, 3);
        float[] half = file.tensor("f16").orElseThrow().toFloatArray();
        float[] bf = file.tensor("bf16").orElseThrow().toFloatArray();
        for (int i = 0; i < f.length; i++) {
            assertThat(half[i]).isCloseTo(f[i], org.assertj.core.data.Offset.offset(Math.abs(f[i]) / 1024 + 1e-4f));
            assertThat(bf[i]).isCloseTo(f[i], org.assertj.core.data.Offset.offset(Math.abs(f[i]) / 128));
        }
        assertThat(file.tensor("i32").orElseThrow().toIntArray()).containsExactly(-7, 1 << 30);
        assertThat(file.tensor("i64").orElseThrow().toLongArray()).containsExactly(1L << 40);
        assertThat(file.tensor("missing")).isEmpty();
    }

    @Test
    void headerIsPaddedSoTensorDataStartsEightByteAligned() {
        // Given a header whose JSON length is not a multiple of 8
        byte[] bytes = new SafetensorsWriter().metadata("x", "abc").addF32("t", new long[] {1}, new float[] {1f}).toBytes();

        // Then the length prefix is a multiple of 8
        long headerLength = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        assertThat(headerLength % 8).isZero();
    }

    @Test
    void tensorsAreViewsOfTheRecordNotCopies() throws Exception {
        // Given a parsed record
        byte[] bytes = new SafetensorsWriter().addF32("t", new long[] {1}, new float[] {1f}).toBytes();
        SafetensorsFile file = SafetensorsFile.parse(bytes);

        // When the record's last 4 bytes change
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putFloat(bytes.length - 4, 42f);

        // Then the tensor sees the change (zero-copy)
        assertThat(file.tensor("t").orElseThrow().toFloatArray()).containsExactly(42f);
    }

    @Test
    void memoryMappedFileReadsTheSameAsBytes(@TempDir Path dir) throws Exception {
        // Given a file on disk
        float[] v = {1f, -2f, 3.5f};
        Path p = dir.resolve("w.safetensors");
        new SafetensorsWriter().metadata("format", "pt").addF32("w", new long[] {3}, v).writeTo(p);

        // When it is opened by memory map
        SafetensorsFile file = SafetensorsFile.open(p);

        // Then values and metadata match
        assertThat(file.tensor("w").orElseThrow().toFloatArray()).containsExactly(v);
        assertThat(file.metadata()).containsEntry("format", "pt");
    }

    @Test
    void recordShorterThanTheLengthPrefixIsATruncatedHeader() {
        assertDecodeError(() -> SafetensorsFile.parse(new byte[5]), Reason.TRUNCATED_HEADER, "5 bytes", "8-byte header length");
    }

    @Test
    void headerLengthPastTheEndIsReportedWithBothNumbers() {
        // Given a prefix claiming 1000 header bytes in a 20-byte record
        byte[] bytes = ByteBuffer.allocate(20).order(ByteOrder.LITTLE_ENDIAN).putLong(1000).array();

        assertDecodeError(() -> SafetensorsFile.parse(bytes), Reason.HEADER_LENGTH_PAST_END, "header length 1000", "20 bytes");
    }

    @Test
    void hugeHeaderLengthIsRejectedRatherThanAllocated() {
        byte[] bytes = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(-1L).array();

        assertDecodeError(() -> SafetensorsFile.parse(bytes), Reason.HEADER_LENGTH_PAST_END, "18446744073709551615");
    }

    @Test
    void headerThatIsNotJsonIsMalformed() {
        assertDecodeError(() -> SafetensorsFile.parse(container("{\"a\": [1, ", new byte[0])),
                Reason.MALFORMED_HEADER, "not valid JSON");
    }

    @Test
    void headerThatIsAJsonArrayIsMalformed() {
        assertDecodeError(() -> SafetensorsFile.parse(container("[1, 2, 3]", new byte[0])),
                Reason.MALFORMED_HEADER, "must be an object");
    }

    @Test
    void unknownDtypeNamesTheTensorAndTheSupportedDtypes() {
        String h = "{\"x\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,1]}}";

        assertDecodeError(() -> SafetensorsFile.parse(container(h, new byte[1])), Reason.UNKNOWN_DTYPE,
                "tensor 'x'", "unknown dtype 'Q4'", "F32, F16, BF16");
    }

    @Test
    void shapeTimesDtypeDifferentFromTheByteRangeIsASizeMismatch() {
        // Given [3, 4] F32 = 48 bytes declared over a 40-byte range
        String h = "{\"activations\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,40]}}";

        assertDecodeError(() -> SafetensorsFile.parse(container(h, new byte[40])), Reason.SIZE_MISMATCH,
                "tensor 'activations'", "[3, 4]", "48 bytes", "hold 40 bytes");
    }

    @Test
    void byteRangePastTheDataSectionIsASizeMismatch() {
        String h = "{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}";

        assertDecodeError(() -> SafetensorsFile.parse(container(h, new byte[8])), Reason.SIZE_MISMATCH,
                "[0, 16]", "data section of 8 bytes");
    }

    @Test
    void negativeShapeIsMalformed() {
        String h = "{\"t\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}";

        assertDecodeError(() -> SafetensorsFile.parse(container(h, new byte[0])), Reason.MALFORMED_HEADER, "shape[0]");
    }

    @Test
    void nonStringMetadataValueIsMalformed() {
        String h = "{\"__metadata__\":{\"position\":3}}";

        assertDecodeError(() -> SafetensorsFile.parse(container(h, new byte[0])), Reason.MALFORMED_HEADER,
                "__metadata__ entry 'position' must be a string");
    }

    @Test
    void duplicateTensorNamesAreMalformed() {
        String h = "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                + "\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";

        assertDecodeError(() -> SafetensorsFile.parse(container(h, new byte[1])), Reason.MALFORMED_HEADER, "Duplicate");
    }

    @Test
    void corruptFileOnDiskNamesThePath(@TempDir Path dir) throws Exception {
        Path p = dir.resolve("bad.safetensors");
        Files.write(p, new byte[3]);

        assertDecodeError(() -> SafetensorsFile.open(p), Reason.TRUNCATED_HEADER, p.toString());
    }
}
