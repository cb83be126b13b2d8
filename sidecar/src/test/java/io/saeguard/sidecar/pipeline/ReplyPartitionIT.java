package io.saeguard.sidecar.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import io.saeguard.sae.PythonSaeFixtures;
import io.saeguard.sidecar.app.Sidecar;
import io.saeguard.sidecar.testing.KafkaBroker;
import io.saeguard.sidecar.testing.KafkaBrokerExtension;
import io.saeguard.topics.catalog.TopicCatalog;
import io.saeguard.topics.catalog.TopicRole;
import io.saeguard.topics.events.Decision;
import io.saeguard.topics.events.EventCodec;
import io.saeguard.topics.safetensors.SafetensorsWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.utils.Utils;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Decisions on the partition their producer named (issue 19, item 5), against a real broker, exactly-once. Invariant:
 * every record naming a partition the decisions topic has yields exactly one decision on that partition, a request's
 * decisions in position order; a record naming none yields its decision on its key's partition; a record naming a
 * partition the topic lacks, or a value that is no partition number, yields one dead letter and no decision.
 */
@ExtendWith(KafkaBrokerExtension.class)
class ReplyPartitionIT {
    private static final long SEED = new Random().nextLong() & 0x7fffffffL;
    private static final EventCodec CODEC = new EventCodec();
    private static final int CHUNKS = 3;

    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        System.out.println("ReplyPartitionIT seed=" + SEED);
        PythonSaeFixtures.assumeAvailable();
    }

    @Test
    void decisionsLandOnTheNamedPartitionAndAPartitionTheTopicLacksIsDeadLettered(KafkaBroker kafka) throws Exception {
        // Given a sidecar (exactly-once) whose decisions topic has the catalog's partition count
        Scenario s = Scenario.create(dir, kafka.bootstrap(), SEED, "delivery: exactly-once\n");
        int partitions = TopicCatalog.bundled().get(TopicRole.DECISIONS).partitions();
        Map<String, Integer> named = Map.of("req-a", 3, "req-b", partitions - 1);
        try (Sidecar sidecar = Sidecar.start(s.config()); KafkaProducer<String, byte[]> producer = s.producer()) {
            // When req-a and req-b name their reply partitions, req-c names none, req-far names one past the last
            // partition and req-bad a value that is no number
            String activations = s.topic(TopicRole.ACTIVATIONS);
            for (int c = 0; c < CHUNKS; c++) {
                long position = (long) c * Scenario.TOKENS_PER_RECORD;
                boolean last = c == CHUNKS - 1;
                for (Map.Entry<String, Integer> n : named.entrySet()) {
                    producer.send(new ProducerRecord<>(activations, n.getKey(), s.record(n.getKey(), c, position, last, n.getValue())));
                }
                producer.send(new ProducerRecord<>(activations, "req-c", s.record("req-c", c, position, last)));
            }
            producer.send(new ProducerRecord<>(activations, "req-far", s.record("req-far", 0, 0, true, partitions)));
            producer.send(new ProducerRecord<>(activations, "req-bad", new SafetensorsWriter().metadata("request_id", "req-bad")
                    .metadata("reply_partition", "three").addF32("activations", new long[] {1, 2}, new float[] {1, 2}).toBytes()));
            producer.flush();
            int decided = (named.size() + 1) * CHUNKS;
            Awaitility.await().atMost(Duration.ofSeconds(90)).pollInterval(Duration.ofMillis(500))
                    .until(() -> s.readToEnd(TopicRole.DECISIONS).size() >= decided && s.readToEnd(TopicRole.DEADLETTER).size() >= 2);

            // Then each request's decisions are on its partition, once each, in position order
            Map<String, List<Long>> positions = new HashMap<>();
            Map<String, Integer> partitionOf = new HashMap<>();
            List<ConsumerRecord<String, byte[]>> decisions = s.readToEnd(TopicRole.DECISIONS);
            assertThat(decisions).hasSize(decided);
            for (ConsumerRecord<String, byte[]> r : decisions) {
                Decision d = CODEC.decodeDecision(r.value());
                assertThat(d.requestId()).isEqualTo(r.key());
                positions.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(d.position());
                assertThat(partitionOf.put(r.key(), r.partition())).as("partition of " + r.key()).isIn(null, r.partition());
            }
            List<Long> inOrder = List.of(0L, 4L, 8L);
            assertThat(positions).containsOnlyKeys("req-a", "req-b", "req-c").allSatisfy((k, p) -> assertThat(p).isEqualTo(inOrder));
            assertThat(partitionOf).containsEntry("req-a", 3).containsEntry("req-b", partitions - 1)
                    .containsEntry("req-c", Utils.toPositive(Utils.murmur2("req-c".getBytes(StandardCharsets.UTF_8))) % partitions);

            // And the two bad values are dead-lettered, each with its stage and reason
            Map<String, String> reasons = new HashMap<>();
            for (ConsumerRecord<String, byte[]> r : s.readToEnd(TopicRole.DEADLETTER)) {
                reasons.put(r.key(), header(r, "saeguard.error.stage") + "/" + header(r, "saeguard.error.reason"));
            }
            assertThat(reasons).containsOnly(Map.entry("req-far", "validate/reply_partition_out_of_range"),
                    Map.entry("req-bad", "decode/invalid_value"));
            assertThat(sidecar.ready()).isTrue();
        }
    }

    private static String header(ConsumerRecord<String, byte[]> r, String name) {
        Header h = r.headers().lastHeader(name);
        return h == null ? null : new String(h.value(), StandardCharsets.UTF_8);
    }
}
