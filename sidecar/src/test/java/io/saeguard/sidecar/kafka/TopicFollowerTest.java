package io.saeguard.sidecar.kafka;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.saeguard.sidecar.testing.WaitingMockConsumer;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.MockConsumer;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;

/** The follower's loop against a {@link MockConsumer}: catch-up, hand-over order, failure and close. */
class TopicFollowerTest {
    private static final String TOPIC = "followed";
    private static final TopicPartition P0 = new TopicPartition(TOPIC, 0);

    private final MockConsumer<String, byte[]> consumer = new WaitingMockConsumer();
    private final List<Long> handled = new CopyOnWriteArrayList<>();
    private final AtomicInteger caughtUp = new AtomicInteger();
    private final AtomicReference<Throwable> failed = new AtomicReference<>();
    private final TopicFollower.Listener listener = new TopicFollower.Listener() {
        @Override
        public void caughtUp() {
            caughtUp.incrementAndGet();
        }

        @Override
        public void failed(Throwable failure) {
            failed.set(failure);
        }
    };

    private void partitionWith(long end) {
        consumer.updatePartitions(TOPIC, List.of(new PartitionInfo(TOPIC, 0, Node.noNode(), new Node[0], new Node[0])));
        consumer.updateBeginningOffsets(Map.of(P0, 0L));
        consumer.updateEndOffsets(Map.of(P0, end));
    }

    private void append(long offset) {
        consumer.addRecord(new ConsumerRecord<>(TOPIC, 0, offset, "k" + offset, new byte[0]));
    }

    @Test
    void recordsUpToTheStartsEndAreHandedOverInOrderThenCaughtUpIsToldOnce() {
        // Given a partition holding offsets 0..2
        partitionWith(3);
        TopicFollower follower = new TopicFollower("test-follower", "test follower", TOPIC, consumer, r -> handled.add(r.offset()), listener);
        follower.startFromBeginning(Duration.ofSeconds(1), "no topic");
        try {
            // When the records arrive, and one more after them
            append(0);
            append(1);
            append(2);
            await().atMost(Duration.ofSeconds(10)).until(() -> caughtUp.get() == 1);
            append(3);

            // Then
            await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(handled).containsExactly(0L, 1L, 2L, 3L));
            assertThat(caughtUp).hasValue(1);
            assertThat(follower.running()).isTrue();
        } finally {
            follower.close();
        }
    }

    @Test
    void aHandlerThatThrowsStopsTheFollowerAndIsReportedAsItsFailure() {
        // Given a handler that refuses its record
        partitionWith(1);
        IllegalStateException refusal = new IllegalStateException("refused");
        TopicFollower follower = new TopicFollower("test-follower", "test follower", TOPIC, consumer, r -> {
            throw refusal;
        }, listener);
        follower.startFromBeginning(Duration.ofSeconds(1), "no topic");

        // When
        append(0);

        // Then
        await().atMost(Duration.ofSeconds(10)).until(() -> !follower.running());
        assertThat(failed).hasValue(refusal);
        assertThat(caughtUp).hasValue(0);
        follower.close();
        assertThat(consumer.closed()).isTrue();
    }

    @Test
    void aMissingTopicIsRefusedWithTheOwnersMessage() {
        // Given no partitions for the topic
        TopicFollower follower = new TopicFollower("test-follower", "test follower", TOPIC, consumer, r -> handled.add(r.offset()), listener);

        // Then
        assertThatThrownBy(() -> follower.startFromBeginning(Duration.ofSeconds(1), "the test topic does not exist: create it"))
                .isInstanceOf(IllegalStateException.class).hasMessage("the test topic does not exist: create it");
    }

    @Test
    void closeStopsTheThreadAndClosesTheConsumer() {
        // Given a running follower
        partitionWith(0);
        TopicFollower follower = new TopicFollower("test-follower", "test follower", TOPIC, consumer, r -> handled.add(r.offset()), listener);
        follower.startFromBeginning(Duration.ofSeconds(1), "no topic");

        // When
        follower.close();

        // Then
        assertThat(follower.running()).isFalse();
        assertThat(consumer.closed()).isTrue();
    }
}
