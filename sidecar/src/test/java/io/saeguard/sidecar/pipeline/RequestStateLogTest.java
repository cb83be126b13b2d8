package io.saeguard.sidecar.pipeline;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.saeguard.detectors.RequestSnapshot;
import io.saeguard.detectors.RequestSnapshotCodec;
import io.saeguard.sidecar.metrics.Metrics;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.MockConsumer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.record.TimestampType;
import org.junit.jupiter.api.Test;

/**
 * Which state record a new owner restores (docs/architecture.md#request-state), against a {@link MockConsumer}: per
 * request, this group's record from this input partition at the highest source offset below the resume position.
 */
class RequestStateLogTest {
    private static final String STATE = "state";
    private static final String INPUT = "activations";
    private static final TopicPartition IN0 = new TopicPartition(INPUT, 0);
    private static final TopicPartition ST0 = new TopicPartition(STATE, 0);
    private static final RequestStateLog.Target TARGET = new RequestStateLog.Target(STATE, "group-a");

    private final MockConsumer<String, byte[]> reader = new MockConsumer<>("earliest");
    private final Metrics metrics = new Metrics(new PrometheusRegistry());
    private final RequestStateLog log = new RequestStateLog(TARGET, reader, metrics, Duration.ofSeconds(5), new ManualTime(0));
    private long stateOffset;

    private static RequestSnapshot snapshot(String request, long seq) {
        return new RequestSnapshot(request, seq, 0, List.of(new RequestSnapshot.SaeProgress("sae", false)), List.of());
    }

    /** Appends the state record written after input record {@code sourceOffset} (value: the snapshot, or a tombstone). */
    private void written(RequestStateLog.Target target, String request, long sourceOffset, Optional<RequestSnapshot> s) {
        ConsumerRecord<String, byte[]> source = new ConsumerRecord<>(INPUT, 0, sourceOffset, request, new byte[0]);
        ProducerRecord<String, byte[]> p = RequestStateLog.record(target, source, request, s.map(RequestSnapshotCodec::encode));
        assertThat(p.partition()).isZero();
        reader.addRecord(new ConsumerRecord<>(STATE, 0, stateOffset++, 0L, TimestampType.CREATE_TIME, -1, -1, p.key(), p.value(),
                new RecordHeaders(p.headers().toArray()), Optional.empty()));
    }

    /** Reads back input partition 0 as of {@code resume}, the state partition holding {@code records} records. */
    private Map<TopicPartition, List<RequestSnapshot>> readAt(long resume, long records) {
        reader.updateBeginningOffsets(Map.of(ST0, 0L));
        reader.updateEndOffsets(Map.of(ST0, records));
        return log.read(Map.of(IN0, resume));
    }

    @Test
    void theStateAfterTheLastRecordBelowTheResumePositionIsRestored() {
        // Given (a MockConsumer takes records only once assigned, which read() does: they are added at its first poll)
        reader.schedulePollTask(() -> {
            written(TARGET, "r1", 3, Optional.of(snapshot("r1", 1)));
            written(TARGET, "r1", 7, Optional.of(snapshot("r1", 2)));
            written(TARGET, "r1", 12, Optional.of(snapshot("r1", 3))); // acknowledged, not committed: decided again
            written(TARGET, "r2", 5, Optional.of(snapshot("r2", 1)));
            written(TARGET, "r2", 9, Optional.empty()); // ended
            written(new RequestStateLog.Target(STATE, "group-b"), "r3", 4, Optional.of(snapshot("r3", 1)));
            written(TARGET, "r4", 8, Optional.of(snapshot("r4", 5)));
            written(TARGET, "r4", 6, Optional.of(snapshot("r4", 4))); // a late write of an older record's state
        });

        // When
        Map<TopicPartition, List<RequestSnapshot>> restored = readAt(10, 8);

        // Then
        assertThat(restored.get(IN0)).containsExactlyInAnyOrder(snapshot("r1", 2), snapshot("r4", 5));
    }

    @Test
    void anUnreadableRecordIsSkippedCountedAndItsRequestStartsAfresh() {
        // Given
        reader.schedulePollTask(() -> {
            written(TARGET, "r1", 3, Optional.of(snapshot("r1", 1)));
            RecordHeaders h = new RecordHeaders();
            h.add(RequestStateLog.GROUP, "group-a".getBytes(StandardCharsets.UTF_8));
            h.add(RequestStateLog.SOURCE_TOPIC, INPUT.getBytes(StandardCharsets.UTF_8));
            h.add(RequestStateLog.SOURCE_OFFSET, "4".getBytes(StandardCharsets.UTF_8));
            reader.addRecord(new ConsumerRecord<>(STATE, 0, stateOffset++, 0L, TimestampType.CREATE_TIME, -1, -1, "r1",
                    "SGS\u0009future".getBytes(StandardCharsets.UTF_8), h, Optional.empty()));
        });

        // When
        Map<TopicPartition, List<RequestSnapshot>> restored = readAt(10, 2);

        // Then
        assertThat(restored.get(IN0)).isEmpty();
        assertThat(metrics.stateSkipped.get()).isEqualTo(1.0);
    }

    @Test
    void aStateTopicWithOtherPartitionsThanAnInputTopicIsRefusedNamingBoth() {
        Node node = new Node(0, "localhost", 9092);
        reader.updatePartitions(STATE, List.of(new PartitionInfo(STATE, 0, node, null, null)));
        reader.updatePartitions(INPUT, List.of(new PartitionInfo(INPUT, 0, node, null, null), new PartitionInfo(INPUT, 1, node, null, null)));

        assertThatThrownBy(() -> log.checkPartitions(List.of(INPUT)))
                .hasMessageContaining("'state' has 1 partitions but the input topic 'activations' has 2");
    }
}
