package io.saeguard.detectors;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.BitSet;
import java.util.Random;
import org.junit.jupiter.api.Test;

class CountedPositionsTest {
    @Test
    void aRequestInOrderKeepsOnlyItsContiguousPrefixHoweverLong() {
        // Given
        CountedPositions p = new CountedPositions();

        // When: a million chunks of 16 tokens, each twice
        for (long c = 0; c < 1_000_000; c++) {
            p.add(16 * c, 16 * c + 16);
            p.add(16 * c, 16 * c + 16);
        }

        // Then
        assertThat(p.below()).isEqualTo(16_000_000L);
        assertThat(p.gaps()).isZero();
        assertThat(p.contains(15_999_999)).isTrue();
        assertThat(p.contains(16_000_000)).isFalse();
    }

    @Test
    void chunksAheadOfAGapAreRangesUntilTheGapFills() {
        // Given
        CountedPositions p = new CountedPositions();
        p.add(0, 10);

        // When
        p.add(20, 30);
        p.add(40, 50);

        // Then
        assertThat(p.gaps()).isEqualTo(2);
        assertThat(p.contains(15)).isFalse();
        assertThat(p.contains(25)).isTrue();
        assertThat(p.containsAll(22, 28)).isTrue();
        assertThat(p.containsAll(25, 35)).isFalse();

        // When: the gaps fill, partly overlapping what was counted
        p.add(5, 22);
        p.add(28, 45);

        // Then
        assertThat(p.gaps()).isZero();
        assertThat(p.below()).isEqualTo(50);
    }

    @Test
    void theLowestGapIsGivenUpPastTheRangeCapSoMemoryStaysBounded() {
        // Given: position 0 never arrives; every other run of 2 does, in order
        CountedPositions p = new CountedPositions();

        // When
        for (long at = 1; at < 1_000; at += 3) {
            p.add(at, at + 2);
        }

        // Then: never more than the cap; the given-up gaps are counted as positions never counted
        assertThat(p.gaps()).isEqualTo(CountedPositions.MAX_RANGES);
        assertThat(p.givenUp()).isEqualTo(p.below() / 3);
        assertThat(p.contains(0)).isTrue();
    }

    @Test
    void membershipMatchesAPlainSetForRandomOverlappingRunsBelowTheCap() {
        long seed = System.nanoTime();
        System.out.println("CountedPositionsTest seed " + seed);
        Random random = new Random(seed);
        for (int run = 0; run < 200; run++) {
            // Given
            CountedPositions p = new CountedPositions();
            BitSet reference = new BitSet();

            // When: 30 random runs (fewer than the cap of 32 ranges, so none is given up) in [0, 300), at most 20 positions each, checked before and after each add
            for (int i = 0; i < 30; i++) {
                int from = random.nextInt(300);
                int to = from + 1 + random.nextInt(20);
                boolean all = reference.nextClearBit(from) >= to;
                assertThat(p.containsAll(from, to)).as("seed %d", seed).isEqualTo(all);
                p.add(from, to);
                reference.set(from, to);
            }

            // Then
            for (int q = 0; q < 330; q++) {
                assertThat(p.contains(q)).as("seed %d position %d", seed, q).isEqualTo(reference.get(q));
            }
            assertThat(p.below()).isEqualTo(reference.nextClearBit(0));
            assertThat(p.givenUp()).isZero();
        }
    }
}
