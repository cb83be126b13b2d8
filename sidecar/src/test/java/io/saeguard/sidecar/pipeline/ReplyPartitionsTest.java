package io.saeguard.sidecar.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class ReplyPartitionsTest {
    private final ManualTime time = new ManualTime(1_000);
    private final AtomicInteger partitions = new AtomicInteger(4);
    private final AtomicInteger lookups = new AtomicInteger();
    private final ReplyPartitions replies = new ReplyPartitions("saeguard.decisions", () -> {
        lookups.incrementAndGet();
        return partitions.get();
    }, time);

    @Test
    void everyPartitionBelowTheCountIsAcceptedAfterOneLookup() {
        // When
        for (int p = 0; p < 4; p++) {
            assertThat(replies.problem(p)).as("partition " + p).isEmpty();
        }

        // Then
        assertThat(lookups).hasValue(1);
    }

    @Test
    void aPartitionAtTheCountIsRefusedNamingTheTopicTheRangeAndTheWayOut() {
        // When
        var problem = replies.problem(4);

        // Then
        assertThat(problem).hasValueSatisfying(p -> assertThat(p)
                .contains("reply_partition 4", "'saeguard.decisions'", "has 4 (0..3)", "SAEGUARD_REPLY_PARTITION", "add partitions"));
    }

    @Test
    void repeatedBadPartitionsLookTheCountUpOncePerInterval() {
        // Given a first lookup
        replies.problem(9);

        // When more records name partitions the topic lacks, within the interval
        for (int i = 0; i < 100; i++) {
            replies.problem(9);
        }

        // Then the count is not looked up again
        assertThat(lookups).hasValue(1);
    }

    @Test
    void aPartitionAddedToTheTopicIsAcceptedOnceTheRefusingCountIsOld() {
        // Given partition 5 refused, then the topic grown to 8 partitions
        assertThat(replies.problem(5)).isPresent();
        partitions.set(8);

        // When asked again within the interval, and after it
        var within = replies.problem(5);
        time.advanceMillis(TimeUnit.NANOSECONDS.toMillis(ReplyPartitions.REFRESH_NANOS));
        var after = replies.problem(5);

        // Then
        assertThat(within).isPresent();
        assertThat(after).isEmpty();
        assertThat(lookups).hasValue(2);
    }

    @Test
    void aMissingDecisionsTopicIsNamedAsMissing() {
        // Given
        partitions.set(0);

        // When
        var problem = replies.problem(0);

        // Then
        assertThat(problem).hasValueSatisfying(p -> assertThat(p).contains("'saeguard.decisions'", "does not exist"));
    }
}
