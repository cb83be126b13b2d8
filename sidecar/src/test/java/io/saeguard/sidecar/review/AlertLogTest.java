package io.saeguard.sidecar.review;

import static org.assertj.core.api.Assertions.assertThat;

import io.saeguard.topics.events.Action;
import io.saeguard.topics.events.Alert;
import io.saeguard.topics.events.Decision;
import io.saeguard.topics.events.EventCodec;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.MockConsumer;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;

class AlertLogTest {
    private static final String TOPIC = "alerts";
    private static final EventCodec CODEC = new EventCodec();
    private final MockConsumer<String, byte[]> consumer = new MockConsumer<>("earliest");

    private static ConsumerRecord<String, byte[]> alert(String requestId, long seq, String detector, long offset) {
        Decision d = Decision.builder(requestId, seq, Action.FLAG, 0).detector(detector).score(0.9).build();
        return new ConsumerRecord<>(TOPIC, 0, offset, requestId, CODEC.encode(Alert.forDecision(d).excerpt("<b>text</b>").build()));
    }

    @Test
    void keepsTheJsonOfTheLastKeepAlertsAndTheDetectorsOfTheLastIndexAlerts() {
        // Given a log keeping 2 alerts' JSON and 3 alert ids
        AlertLog log = new AlertLog(TOPIC, consumer, 2, 10, 3);

        // When 4 alerts are read
        for (int i = 0; i < 4; i++) {
            log.read(alert("r" + i, i, "d" + i, i));
        }

        // Then the last 2 are listed oldest first, and the last 3 can be looked up
        assertThat(log.recent(10)).extracting(AlertLog.Entry::alertId).containsExactly("r2/2", "r3/3");
        assertThat(log.recent(1)).extracting(AlertLog.Entry::alertId).containsExactly("r3/3");
        assertThat(log.detectorsOf("r0", 0)).isEmpty();
        assertThat(log.detectorsOf("r1", 1)).containsExactly("d1");
        assertThat(log.detectorsOf("r3", 3)).containsExactly("d3");
        assertThat(log.detectorsOf("r3", 2)).isEmpty();
    }

    @Test
    void anAlertIsKeptAsTheJsonOnTheTopicAndToldToListeners() {
        // Given
        AlertLog log = new AlertLog(TOPIC, consumer, 2, 10, 3);
        List<AlertLog.Entry> told = new CopyOnWriteArrayList<>();
        log.subscribe(told::add);
        ConsumerRecord<String, byte[]> record = alert("req-1", 4, "toxicity", 0);

        // When
        log.read(record);

        // Then
        assertThat(told).singleElement().satisfies(e -> {
            assertThat(e.json()).isEqualTo(new String(record.value(), StandardCharsets.UTF_8));
            assertThat(e.detector()).isEqualTo("toxicity");
            assertThat(e.alertId()).isEqualTo("req-1/4");
        });
    }

    @Test
    void detectorsAlertingOnTheSameChunkShareItsAlertIdAndAreAllKept() {
        // Given
        AlertLog log = new AlertLog(TOPIC, consumer, 5, 10, 5);

        // When toxicity and harmful-request alert on the same chunk of r
        log.read(alert("r", 2, "toxicity", 0));
        log.read(alert("r", 2, "harmful-request", 1));

        // Then both alerts are listed and both detectors are known for r/2
        assertThat(log.recent(5)).extracting(AlertLog.Entry::detector).containsExactly("toxicity", "harmful-request");
        assertThat(log.detectorsOf("r", 2)).containsExactly("toxicity", "harmful-request");
    }

    @Test
    void aRecordThatIsNotAnAlertIsSkipped() {
        // Given
        AlertLog log = new AlertLog(TOPIC, consumer, 2, 10, 3);

        // When
        log.read(new ConsumerRecord<>(TOPIC, 0, 0, "r", "{\"not\": \"an alert\"}".getBytes(StandardCharsets.UTF_8)));
        log.read(new ConsumerRecord<>(TOPIC, 0, 1, "r", null));

        // Then
        assertThat(log.recent(10)).isEmpty();
    }

    @Test
    void startReadsEachPartitionFromTailRecordsBeforeItsEnd() {
        // Given a partition with 100 records from offset 10, and one with 3
        TopicPartition p0 = new TopicPartition(TOPIC, 0);
        TopicPartition p1 = new TopicPartition(TOPIC, 1);
        consumer.updatePartitions(TOPIC, List.of(new PartitionInfo(TOPIC, 0, Node.noNode(), new Node[0], new Node[0]),
                new PartitionInfo(TOPIC, 1, Node.noNode(), new Node[0], new Node[0])));
        consumer.updateBeginningOffsets(Map.of(p0, 10L, p1, 0L));
        consumer.updateEndOffsets(Map.of(p0, 110L, p1, 3L));
        AlertLog log = new AlertLog(TOPIC, consumer, 2, 20, 3);

        // When
        log.start(Duration.ofSeconds(1));

        // Then
        try {
            assertThat(consumer.assignment()).containsExactlyInAnyOrder(p0, p1);
            assertThat(consumer.position(p0)).isEqualTo(90L);
            assertThat(consumer.position(p1)).isEqualTo(0L);
        } finally {
            log.close();
        }
    }

    @Test
    void aRequestsAlertsAreKnownByTheirSeqsAndTheirEarliestTime() {
        // Given
        AlertLog log = new AlertLog(TOPIC, consumer, 5, 10, 5);
        Decision late = Decision.builder("r", 3, Action.FLAG, 12).detector("toxicity").score(0.9).ts(2_000).build();
        Decision early = Decision.builder("r", 1, Action.FLAG, 4).detector("toxicity").score(0.9).ts(1_000).build();

        // When r's alerts on seq 3 and then on seq 1 are read
        log.read(new ConsumerRecord<>(TOPIC, 0, 0, "r", CODEC.encode(Alert.forDecision(late).build())));
        log.read(new ConsumerRecord<>(TOPIC, 0, 1, "r", CODEC.encode(Alert.forDecision(early).build())));

        // Then both seqs are known, with the earlier time, and another request is not
        assertThat(log.ofRequest("r")).hasValueSatisfying(a -> {
            assertThat(a.seqs()).containsExactly(1L, 3L);
            assertThat(a.firstTime()).hasValue(1_000);
        });
        assertThat(log.ofRequest("s")).isEmpty();
    }
}
