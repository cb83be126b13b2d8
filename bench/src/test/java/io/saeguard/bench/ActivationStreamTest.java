package io.saeguard.bench;

import static org.assertj.core.api.Assertions.assertThat;

import io.saeguard.topics.activation.ActivationChunk;
import io.saeguard.topics.activation.ActivationCodec;
import io.saeguard.topics.events.Phase;
import io.saeguard.topics.safetensors.DType;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The load generator's records: the pre-encoded pool must give the records the float path gives, across its wrap. */
class ActivationStreamTest {
    private static final int D_IN = 24;
    private static final int POOL = 10;
    private static final long SEED = 42;

    @Test
    void recordsAreThePoolsRowsInOrderAcrossTheWrapInEveryWireDtype() throws Exception {
        for (DType dtype : new DType[] {DType.F32, DType.F16, DType.BF16}) {
            for (int tokensPerRecord : new int[] {1, 3, 7}) {
                // Given a stream over a pool whose size is not a multiple of the record's tokens
                ActivationStream.Workload w = new ActivationStream.Workload(D_IN, tokensPerRecord, 4, 4 * tokensPerRecord, dtype, "m", "h",
                        tokensPerRecord == 1 ? Phase.GENERATION : Phase.PROMPT);
                ActivationStream stream = new ActivationStream(w, "run", POOL, SEED);
                float[] pool = new SyntheticJumpRelu(new SaeShape(D_IN, 1), 0).input(POOL, SEED);
                int cursor = 0;
                for (int r = 0; r < 25; r++) {
                    // When the next record is drawn
                    ActivationStream.Next next = stream.next();

                    // Then it is the record the float path builds from the next rows of the pool, byte for byte
                    float[] rows = new float[tokensPerRecord * D_IN];
                    for (int t = 0; t < tokensPerRecord; t++) {
                        System.arraycopy(pool, cursor * D_IN, rows, t * D_IN, D_IN);
                        cursor = (cursor + 1) % POOL;
                    }
                    ActivationChunk c = ActivationCodec.decode(next.value());
                    byte[] expected = ActivationCodec.builder(next.requestId()).model("m").hook("h").position(next.position()).phase(c.phase())
                            .isFinal(c.isFinal()).activations(dtype, tokensPerRecord, D_IN, rows).encode();
                    assertThat(next.value()).as("%s, %d tokens per record, record %d", dtype, tokensPerRecord, r).isEqualTo(expected);
                    assertThat(c.tokens()).isEqualTo(tokensPerRecord);
                }
            }
        }
    }

    @Test
    void thePoolIsNotAllOneRow() {
        // A pool of identical rows would pass the test above with any cursor arithmetic
        float[] pool = new SyntheticJumpRelu(new SaeShape(D_IN, 1), 0).input(POOL, SEED);
        assertThat(Arrays.copyOfRange(pool, 0, D_IN)).isNotEqualTo(Arrays.copyOfRange(pool, D_IN, 2 * D_IN));
    }

    @Test
    void aRecordLeavesOnTheFirstGridPointAtOrAfterItsTime() {
        SplittableRandom rnd = new SplittableRandom(3);
        long t0 = 1_000_000_007L;
        for (int i = 0; i < 10_000; i++) {
            long pace = 1 + rnd.nextLong(2_000_000);
            long sched = t0 + rnd.nextLong(-5_000_000, 50_000_000);
            long wake = LoadGenerator.wakeAt(t0, sched, pace);
            assertThat(wake).as("sched %d pace %d", sched, pace).isGreaterThanOrEqualTo(sched).isLessThan(sched + pace);
            assertThat(Math.floorMod(wake - t0, pace)).isZero();
        }
        assertThat(LoadGenerator.wakeAt(t0, t0 + 123, 0)).isEqualTo(t0 + 123);
        assertThat(LoadGenerator.wakeAt(t0, t0 + 1_000_000, 1_000_000)).isEqualTo(t0 + 1_000_000);
        assertThat(LoadGenerator.wakeAt(t0, t0 + 1_000_001, 1_000_000)).isEqualTo(t0 + 2_000_000);
    }
}
