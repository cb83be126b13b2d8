package io.saeguard.sidecar.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import io.saeguard.topics.activation.ActivationChunk;
import io.saeguard.topics.activation.ActivationCodec;
import io.saeguard.topics.safetensors.DType;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class SpecialMaskTest {
    private static ActivationChunk record(boolean[] mask, int... ids) throws Exception {
        ActivationCodec.Builder b = ActivationCodec.builder("r").activations(DType.F32, ids.length, 1, new float[ids.length]).tokenIds(ids);
        if (mask != null) {
            b.specialMask(mask);
        }
        return ActivationCodec.decode(b.encode());
    }

    private static Optional<boolean[]> of(ActivationChunk c, int... configured) {
        return SpecialMask.of(SpecialMask.marked(c.specialMask(), c.tokens()), c.tokenIds().map(t -> t.toIntArray()), configured, c.tokens());
    }

    @Test
    void nothingMarkedAndNothingConfiguredIsEmpty() throws Exception {
        assertThat(of(record(null, 5, 6, 7))).isEmpty();
        assertThat(of(record(new boolean[3], 5, 6, 7), 1, 2)).isEmpty();
    }

    @Test
    void theRecordsMaskAndTheConfiguredIdsAreUnited() throws Exception {
        // position 0 by the record's mask, positions 2 and 3 by the SAE's special token id 2 (sorted list {2, 9})
        assertThat(of(record(new boolean[] {true, false, false, false}, 5, 6, 2, 2), 2, 9)).hasValueSatisfying(m ->
                assertThat(m).containsExactly(true, false, true, true));
    }

    @Test
    void configuredIdsNeedTheRecordsTokenIds() throws Exception {
        ActivationChunk noIds = ActivationCodec.decode(ActivationCodec.builder("r").activations(DType.F32, 2, 1, new float[2]).encode());

        assertThat(of(noIds, 0, 1, 2)).isEmpty();
    }
}
