package io.saeguard.topics.activation;

import io.saeguard.topics.events.Phase;
import static io.saeguard.topics.DecodeAssertions.assertDecodeError;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.saeguard.topics.DecodeException.Reason;
import io.saeguard.topics.safetensors.DType;
import io.saeguard.topics.safetensors.HalfFloats;
import io.saeguard.topics.safetensors.SafetensorsWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;

class ActivationCodecTest {
    private static final float[] TWO_BY_THREE = {1, 2, 3, 4, 5, 6};

    @Test
    void builtRecordDecodesWithAllMetadata() throws Exception {
        // Given a record with every field set
        byte[] bytes = ActivationCodec.builder("r-1").model("gemma-2-2b").hook("blocks.20.hook_resid_post").position(128)
                .phase(Phase.GENERATION).isFinal(true).tenant("acme").sae("gemma-2b-l20-16k").replyPartition(5)
                .activations(DType.F32, 2, 3, TWO_BY_THREE).tokenIds(new int[] {7, 8}).encode();

        // When decoded
        ActivationChunk c = ActivationCodec.decode(bytes);

        // Then every field is back
        assertThat(c.requestId()).isEqualTo("r-1");
        assertThat(c.model()).contains("gemma-2-2b");
        assertThat(c.hook()).contains("blocks.20.hook_resid_post");
        assertThat(c.position()).isEqualTo(128);
        assertThat(c.phase()).isEqualTo(Phase.GENERATION);
        assertThat(c.isFinal()).isTrue();
        assertThat(c.tenant()).contains("acme");
        assertThat(c.sae()).contains("gemma-2b-l20-16k");
        assertThat(c.replyPartition()).hasValue(5);
        assertThat(c.tokens()).isEqualTo(2);
        assertThat(c.dIn()).isEqualTo(3);
        assertThat(c.toFloatArray()).containsExactly(TWO_BY_THREE);
        assertThat(c.tokenIds().orElseThrow().toIntArray()).containsExactly(7, 8);
    }

    @Test
    void minimalRecordGetsTheDocumentedDefaults() throws Exception {
        ActivationChunk c = ActivationCodec.decode(ActivationCodec.builder("r").activations(DType.BF16, 2, 3, TWO_BY_THREE).encode());

        assertThat(c.position()).isZero();
        assertThat(c.phase()).isEqualTo(Phase.PROMPT);
        assertThat(c.isFinal()).isFalse();
        assertThat(c.model()).isEmpty();
        assertThat(c.sae()).isEmpty();
        assertThat(c.replyPartition()).isEmpty();
        assertThat(c.toFloatArray()).containsExactly(TWO_BY_THREE); // small integers are exact in bf16
    }

    @Test
    void copyRowsReadsASliceOfTokens() throws Exception {
        ActivationChunk c = ActivationCodec.decode(ActivationCodec.builder("r").activations(DType.F16, 2, 3, TWO_BY_THREE).encode());
        float[] dst = new float[5];

        c.copyRows(1, 1, dst, 2);

        assertThat(dst).containsExactly(0, 0, 4, 5, 6);
    }

    @Test
    void rawBytesInTheWireDtypeEncodeTheSameRecordAsFloats() throws Exception {
        Random rnd = new Random(7);
        float[] values = new float[3 * 5];
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) rnd.nextGaussian();
        }
        for (DType dtype : new DType[] {DType.F32, DType.F16, DType.BF16}) {
            // Given the rows as little-endian bytes in the dtype, inside a larger buffer (a pool), positioned past a prefix
            int width = dtype.bytes();
            ByteBuffer pool = ByteBuffer.allocate(11 + values.length * width + 13).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < values.length; i++) {
                int at = 11 + i * width;
                switch (dtype) {
                    case F32 -> pool.putFloat(at, values[i]);
                    case F16 -> pool.putShort(at, HalfFloats.floatToF16(values[i]));
                    default -> pool.putShort(at, HalfFloats.floatToBf16(values[i]));
                }
            }
            ByteBuffer rows = pool.duplicate().position(11).limit(11 + values.length * width);

            // When encoded from the bytes and from the floats
            byte[] fromBytes = ActivationCodec.builder("r").position(4).activations(dtype, 3, 5, rows).encode();
            byte[] fromFloats = ActivationCodec.builder("r").position(4).activations(dtype, 3, 5, values).encode();

            // Then the records are byte for byte the same, and the caller's buffer was not consumed
            assertThat(fromBytes).as(dtype.name()).isEqualTo(fromFloats);
            assertThat(rows.position()).isEqualTo(11);
        }
    }

    @Test
    void rawBytesOfTheWrongLengthOrDtypeAreRefused() {
        ByteBuffer sixFloats = ByteBuffer.allocate(24);

        assertThatThrownBy(() -> ActivationCodec.builder("r").activations(DType.F32, 2, 4, sixFloats))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("needs 32 bytes, got 24");
        assertThatThrownBy(() -> ActivationCodec.builder("r").activations(DType.I32, 2, 3, sixFloats))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("F32, F16 or BF16, not I32");
    }

    @Test
    void missingActivationsTensorListsWhatWasFound() {
        byte[] bytes = new SafetensorsWriter().metadata("request_id", "r").addF32("acts", new long[] {1, 1}, new float[] {1}).toBytes();

        assertDecodeError(() -> ActivationCodec.decode(bytes), Reason.MISSING_TENSOR, "no tensor 'activations'", "found: acts");
    }

    @Test
    void missingRequestIdIsAMissingField() {
        byte[] bytes = new SafetensorsWriter().addF32("activations", new long[] {1, 2}, new float[] {1, 2}).toBytes();

        assertDecodeError(() -> ActivationCodec.decode(bytes), Reason.MISSING_FIELD, "no 'request_id'");
    }

    @Test
    void emptyRequestIdIsAMissingField() {
        byte[] bytes = new SafetensorsWriter().metadata("request_id", "")
                .addF32("activations", new long[] {1, 2}, new float[] {1, 2}).toBytes();

        assertDecodeError(() -> ActivationCodec.decode(bytes), Reason.MISSING_FIELD, "it is empty");
    }

    @Test
    void activationsOfRankThreeAreRejectedWithTheShape() {
        byte[] bytes = new SafetensorsWriter().metadata("request_id", "r")
                .addF32("activations", new long[] {1, 1, 2}, new float[] {1, 2}).toBytes();

        assertDecodeError(() -> ActivationCodec.decode(bytes), Reason.INVALID_VALUE, "rank 2", "[1, 1, 2]");
    }

    @Test
    void integerActivationsAreRejected() {
        byte[] bytes = new SafetensorsWriter().metadata("request_id", "r")
                .addI32("activations", new long[] {1, 2}, new int[] {1, 2}).toBytes();

        assertDecodeError(() -> ActivationCodec.decode(bytes), Reason.INVALID_VALUE, "F32, F16 or BF16, found I32");
    }

    @Test
    void tokenIdsOfTheWrongLengthAreRejected() {
        byte[] bytes = new SafetensorsWriter().metadata("request_id", "r")
                .addF32("activations", new long[] {2, 1}, new float[] {1, 2})
                .addI32("token_ids", new long[] {3}, new int[] {1, 2, 3}).toBytes();

        assertDecodeError(() -> ActivationCodec.decode(bytes), Reason.INVALID_VALUE, "'token_ids'", "[2]");
    }

    @Test
    void specialMaskIsReadInEveryAcceptedDtype() throws Exception {
        byte[] built = ActivationCodec.builder("r").activations(DType.F32, 3, 1, new float[] {1, 2, 3})
                .specialMask(new boolean[] {true, false, true}).encode();
        byte[] asBool = new SafetensorsWriter().metadata("request_id", "r")
                .addF32("activations", new long[] {3, 1}, new float[] {1, 2, 3})
                .add("special_mask", DType.BOOL, new long[] {3}, ByteBuffer.wrap(new byte[] {0, 1, 0})).toBytes();

        assertThat(ActivationCodec.decode(built).specialMask().orElseThrow().toLongArray()).containsExactly(1, 0, 1);
        assertThat(ActivationCodec.decode(asBool).specialMask().orElseThrow().toLongArray()).containsExactly(0, 1, 0);
        assertThat(ActivationCodec.decode(ActivationCodec.builder("r").activations(DType.F32, 1, 1, new float[] {1}).encode()).specialMask())
                .isEmpty();
    }

    @Test
    void specialMaskOfTheWrongLengthOrDtypeIsRejected() {
        byte[] shortMask = new SafetensorsWriter().metadata("request_id", "r")
                .addF32("activations", new long[] {2, 1}, new float[] {1, 2})
                .addI32("special_mask", new long[] {1}, new int[] {1}).toBytes();
        byte[] floatMask = new SafetensorsWriter().metadata("request_id", "r")
                .addF32("activations", new long[] {2, 1}, new float[] {1, 2})
                .addF32("special_mask", new long[] {2}, new float[] {1, 0}).toBytes();

        assertDecodeError(() -> ActivationCodec.decode(shortMask), Reason.INVALID_VALUE, "'special_mask'", "[2]");
        assertDecodeError(() -> ActivationCodec.decode(floatMask), Reason.INVALID_VALUE, "'special_mask' must be BOOL or U8 or I32 or I64", "F32");
    }

    @Test
    void badPositionPhaseAndFinalAreNamed() {
        assertDecodeError(() -> ActivationCodec.decode(withMetadata("position", "-3")), Reason.INVALID_VALUE, "'position'", "'-3'");
        assertDecodeError(() -> ActivationCodec.decode(withMetadata("position", "x")), Reason.INVALID_VALUE, "'position'", "'x'");
        assertDecodeError(() -> ActivationCodec.decode(withMetadata("phase", "decode")), Reason.INVALID_VALUE, "'phase'", "'decode'");
        assertDecodeError(() -> ActivationCodec.decode(withMetadata("final", "yes")), Reason.INVALID_VALUE, "'final'", "'yes'");
    }

    @Test
    void replyPartitionThatIsNotANonNegativeIntegerIsNamedWithTheWayOut() {
        assertDecodeError(() -> ActivationCodec.decode(withMetadata("reply_partition", "-1")), Reason.INVALID_VALUE, "'reply_partition'", "'-1'",
                "leave it out");
        assertDecodeError(() -> ActivationCodec.decode(withMetadata("reply_partition", "two")), Reason.INVALID_VALUE, "'reply_partition'", "'two'");
        assertDecodeError(() -> ActivationCodec.decode(withMetadata("reply_partition", "2147483648")), Reason.INVALID_VALUE, "'reply_partition'");
    }

    private static byte[] withMetadata(String key, String value) {
        return new SafetensorsWriter().metadata("request_id", "r").metadata(key, value)
                .addF32("activations", new long[] {1, 2}, new float[] {1, 2}).toBytes();
    }
}
