package io.saeguard.sidecar.pipeline;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.saeguard.detectors.DetectorDefinition;
import io.saeguard.sidecar.testing.WaitingMockConsumer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.MockConsumer;
import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.MockProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.utils.Time;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The registry's reader and writer against a {@link MockConsumer} and {@link MockProducer}, with a recording engine. */
class DetectorRegistryTest {
    private static final String TOPIC = "detectors";
    private static final TopicPartition P0 = new TopicPartition(TOPIC, 0);

    private final MockConsumer<String, byte[]> consumer = new WaitingMockConsumer();
    /** Whether a sent record is also appended to the consumer's log (the broker), at the next offset. */
    private volatile boolean deliver = true;
    private long nextOffset;
    private final MockProducer<String, byte[]> producer = new MockProducer<>(true, null, new StringSerializer(), new ByteArraySerializer()) {
        @Override
        public synchronized Future<RecordMetadata> send(ProducerRecord<String, byte[]> record, Callback callback) {
            Future<RecordMetadata> f = super.send(record, callback);
            if (deliver) {
                append(record.key(), record.value(), record.headers().toArray());
            }
            return f;
        }
    };
    private final List<String> applied = new CopyOnWriteArrayList<>();
    private final Set<String> refused = new java.util.concurrent.ConcurrentSkipListSet<>();
    private final Map<String, DetectorDefinition> running = new java.util.concurrent.ConcurrentHashMap<>();
    private volatile DetectorRegistry registry;
    private final List<ConsumerRecord<String, byte[]>> beforeStart = new java.util.ArrayList<>();

    private final DetectorRegistry.Target target = new DetectorRegistry.Target() {
        @Override
        public CompletableFuture<Boolean> replace(DetectorDefinition definition) {
            if (refused.contains(definition.id())) {
                applied.add("refused " + definition.id());
                return CompletableFuture.failedFuture(new InvalidRequestException("names unknown SAE id"));
            }
            applied.add("replace " + definition.id());
            return CompletableFuture.completedFuture(running.put(definition.id(), definition) != null);
        }

        @Override
        public CompletableFuture<Boolean> remove(String id) {
            applied.add("remove " + id);
            return CompletableFuture.completedFuture(running.remove(id) != null);
        }
    };

    private static byte[] yaml(String id) {
        return """
                id: %s
                sae: s
                rule:
                  kind: features
                  match: any
                  features:
                    - id: 3
                      threshold: 1.0
                aggregate: max
                policy:
                  bands:
                    - min: 1.0
                      action: flag
                """.formatted(id).getBytes(StandardCharsets.UTF_8);
    }

    /** Appends to the topic's log; the consumer sees it once the registry assigned the partition. */
    private synchronized void append(String key, byte[] value, org.apache.kafka.common.header.Header... headers) {
        ConsumerRecord<String, byte[]> r = new ConsumerRecord<>(TOPIC, 0, nextOffset++, 0L, TimestampType.CREATE_TIME, 0, 0, key, value,
                new RecordHeaders(headers), Optional.empty());
        if (registry == null) {
            beforeStart.add(r);
        } else {
            consumer.addRecord(r);
        }
    }

    private DetectorRegistry start(Duration applyTimeout) {
        consumer.updatePartitions(TOPIC, List.of(new PartitionInfo(TOPIC, 0, Node.noNode(), new Node[0], new Node[0])));
        consumer.updateBeginningOffsets(Map.of(P0, 0L));
        consumer.updateEndOffsets(Map.of(P0, nextOffset));
        DetectorRegistry r = new DetectorRegistry(TOPIC, producer, consumer, target, applyTimeout, Time.SYSTEM);
        r.start(Duration.ofSeconds(1));
        synchronized (this) {
            beforeStart.forEach(consumer::addRecord);
            registry = r;
        }
        return r;
    }

    @AfterEach
    void close() {
        if (registry != null) {
            registry.close();
        }
    }

    @Test
    void theLogIsAppliedInOrderBeforeTheRegistryReportsCaughtUp() throws Exception {
        // Given a log that adds a, adds b, removes a
        append("a", yaml("a"));
        append("b", yaml("b"));
        append("a", null);

        // When the registry starts
        DetectorRegistry r = start(Duration.ofSeconds(5));

        // Then it is caught up only with all three applied, in order
        assertThat(r.awaitCaughtUp(Duration.ofSeconds(10))).isTrue();
        assertThat(r.caughtUp()).isTrue();
        assertThat(applied).containsExactly("replace a", "replace b", "remove a");
        assertThat(r.holds("b")).isTrue();
        assertThat(r.holds("a")).isFalse();
    }

    @Test
    void aRecordThisReplicaCannotRunIsSkippedAndTheNextOneStillApplies() throws Exception {
        // Given a record that does not parse, one the engine refuses, and a good one
        append("broken", "id: broken\nrule: [".getBytes(StandardCharsets.UTF_8));
        refused.add("other-sae");
        append("other-sae", yaml("other-sae"));
        append("good", yaml("good"));

        // When the registry reads them
        DetectorRegistry r = start(Duration.ofSeconds(5));

        // Then it skips the first two and applies the third, still reading
        assertThat(r.awaitCaughtUp(Duration.ofSeconds(10))).isTrue();
        assertThat(applied).containsExactly("refused other-sae", "replace good");
        assertThat(running).containsOnlyKeys("good");
        assertThat(r.caughtUp()).isTrue();
    }

    @Test
    void aPublishAnswersOnceThisReplicaAppliedItsOwnRecordAndTheRecordSaysWhoAndWhen() throws Exception {
        DetectorRegistry r = start(Duration.ofSeconds(5));
        assertThat(r.awaitCaughtUp(Duration.ofSeconds(10))).isTrue();

        // When a detector is added and then replaced
        boolean firstExisted = r.publish("a", Optional.of(yaml("a")), "alice").get(10, TimeUnit.SECONDS);
        boolean secondExisted = r.publish("a", Optional.of(yaml("a")), "alice").get(10, TimeUnit.SECONDS);

        // Then each answer reflects this replica's engine, and the records carry the headers
        assertThat(firstExisted).isFalse();
        assertThat(secondExisted).isTrue();
        ProducerRecord<String, byte[]> sent = producer.history().get(0);
        assertThat(new String(sent.headers().lastHeader(DetectorRegistry.WHO).value(), StandardCharsets.UTF_8)).isEqualTo("alice");
        assertThat(Long.parseLong(new String(sent.headers().lastHeader(DetectorRegistry.WHEN).value(), StandardCharsets.UTF_8)))
                .isPositive();

        // And a removal is a tombstone, applied likewise
        assertThat(r.publish("a", Optional.empty(), "alice").get(10, TimeUnit.SECONDS)).isTrue();
        assertThat(producer.history().get(2).value()).isNull();
        assertThat(r.holds("a")).isFalse();
    }

    @Test
    void aChangeNotAppliedInTimeFailsAsRegistryUnavailable() throws Exception {
        DetectorRegistry r = start(Duration.ofMillis(300));
        assertThat(r.awaitCaughtUp(Duration.ofSeconds(10))).isTrue();

        // Given records that never come back from the broker, When a change is published
        deliver = false;
        CompletableFuture<Boolean> f = r.publish("a", Optional.of(yaml("a")), "alice");

        // Then it fails after the apply timeout, as a 503 would
        assertThatThrownBy(() -> f.get(10, TimeUnit.SECONDS)).isInstanceOf(ExecutionException.class)
                .hasCauseInstanceOf(RegistryUnavailableException.class).hasMessageContaining("did not apply it within 300 ms");
    }

    @Test
    void filesSeedOnlyIdsTheTopicNeverHeldSoARemovalStaysRemoved() throws Exception {
        // Given a topic holding b and a tombstone for a
        append("a", yaml("a"));
        append("a", null);
        append("b", yaml("b"));
        DetectorRegistry r = start(Duration.ofSeconds(5));
        assertThat(r.awaitCaughtUp(Duration.ofSeconds(10))).isTrue();

        // When files for a, b and c seed it, Then only c is published, with the file as its author
        assertThat(r.seed(Path.of("a.yaml"), "a", yaml("a"))).isFalse();
        assertThat(r.seed(Path.of("b.yaml"), "b", yaml("b"))).isFalse();
        assertThat(r.seed(Path.of("c.yaml"), "c", yaml("c"))).isTrue();
        assertThat(producer.history()).hasSize(1);
        assertThat(new String(producer.history().get(0).headers().lastHeader(DetectorRegistry.WHO).value(), StandardCharsets.UTF_8))
                .startsWith("file:").endsWith("c.yaml");
        Awaitility.await().atMost(Duration.ofSeconds(10)).until(() -> r.holds("c"));
    }
}
