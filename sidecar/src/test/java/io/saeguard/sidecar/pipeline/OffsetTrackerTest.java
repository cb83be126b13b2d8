package io.saeguard.sidecar.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;

class OffsetTrackerTest {
    private static final TopicPartition P0 = new TopicPartition("t", 0);
    private static final TopicPartition P1 = new TopicPartition("t", 1);

    @Test
    void commitsOnlyUpToTheHighestContiguousFinishedOffset() {
        // Given offsets 10..13 in flight
        OffsetTracker t = new OffsetTracker();
        for (long o = 10; o <= 13; o++) {
            t.started(P0, o);
        }

        // When 11 and 12 finish before 10
        t.finished(P0, 11);
        t.finished(P0, 12);

        // Then nothing is committable yet
        assertThat(t.toCommit()).isEmpty();

        // When 10 finishes, Then 13 (the next offset to read) is committable
        t.finished(P0, 10);
        assertThat(t.toCommit()).containsExactly(Map.entry(P0, new OffsetAndMetadata(13)));
        assertThat(t.unfinished()).isEqualTo(1);
    }

    @Test
    void aCommittedOffsetIsNotOfferedAgain() {
        OffsetTracker t = new OffsetTracker();
        t.started(P0, 0);
        t.finished(P0, 0);

        t.committed(t.toCommit());

        assertThat(t.toCommit()).isEmpty();
    }

    @Test
    void partitionsAreIndependentAndRevokedOnesAreForgotten() {
        OffsetTracker t = new OffsetTracker();
        t.started(P0, 5);
        t.started(P1, 7);
        t.finished(P1, 7);

        t.remove(List.of(P1));
        t.finished(P1, 8); // a late ack from a revoked partition

        assertThat(t.toCommit()).isEmpty();
        assertThat(t.unfinished()).isEqualTo(1);
    }

    @Test
    void theFirstStartedOffsetIsWhereARewindGoesWhenNothingWasCommitted() {
        // Given a partition tracked from offset 7 on, with 7 and 8 finished and committed
        OffsetTracker t = new OffsetTracker();
        assertThat(t.firstStarted(P0)).isEqualTo(-1);
        t.started(P0, 7);
        t.started(P0, 8);
        t.finished(P0, 7);

        // Then the first started offset stays 7 however far the partition moved
        assertThat(t.firstStarted(P0)).isEqualTo(7);

        // When the partition is forgotten (recovery, revoke), Then tracking restarts at the next record
        t.remove(List.of(P0));
        assertThat(t.firstStarted(P0)).isEqualTo(-1);
        t.started(P0, 9);
        assertThat(t.firstStarted(P0)).isEqualTo(9);
    }
}
