package io.saeguard.sidecar.pipeline;

import io.saeguard.sidecar.app.Sidecar;
import static org.assertj.core.api.Assertions.assertThat;

import io.saeguard.sae.PythonSaeFixtures;
import io.saeguard.sidecar.kafka.EmbeddedKafka;
import io.saeguard.sidecar.testing.KafkaBroker;
import io.saeguard.sidecar.testing.KafkaBrokerExtension;
import io.saeguard.sidecar.testing.Ports;
import io.saeguard.topics.catalog.TopicRole;
import io.saeguard.topics.events.Decision;
import io.saeguard.topics.events.EventCodec;
import io.saeguard.sidecar.kafka.TopicAdmin;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Invariant under faults: every input record yields exactly one decision (a valid record) or one
 * dead-letter record (a poison pill), by (request id, position), across a broker stop and start and
 * across a rebalance to a second instance ({@link DeliveryLedger}). Nothing is lost and nothing
 * invented; at-least-once may repeat an output (counted and printed), exactly-once may not.
 */
@ExtendWith(KafkaBrokerExtension.class)
class FaultsIT {
    private static final long SEED = new Random().nextLong() & 0x7fffffffL;
    private static final EventCodec CODEC = new EventCodec();

    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        System.out.println("FaultsIT seed=" + SEED);
        PythonSaeFixtures.assumeAvailable();
    }

    @ParameterizedTest
    @ValueSource(strings = {"at-least-once", "exactly-once"})
    void everyInputIsAccountedForAcrossABrokerStopAndStart(String delivery) throws Exception {
        // Given a broker of our own (persistent, fixed port), a sidecar on it, a stream with one record in five a poison
        // pill, and a producer that holds records through an outage: it keeps the metadata it has (no rebootstrap, so a
        // send does not block on metadata while no broker answers) and gives delivery 3 minutes
        int port = Ports.free();
        Path data = dir.resolve("kafka");
        EmbeddedKafka broker = EmbeddedKafka.start(port, Optional.of(data), Map.of());
        Scenario s = Scenario.create(dir.resolve("s"), broker.bootstrap(), SEED, "delivery: " + delivery + "\n");
        DeliveryLedger ledger = new DeliveryLedger(s, 8);
        try (Sidecar sidecar = Sidecar.start(s.config());
                KafkaProducer<String, byte[]> producer = s.producer(Map.of(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "180000",
                        CommonClientConfigs.METADATA_RECOVERY_STRATEGY_CONFIG, "none", ProducerConfig.MAX_BLOCK_MS_CONFIG, "10000"))) {
            Awaitility.await().atMost(Duration.ofSeconds(60)).until(sidecar::ready);
            acknowledged(send(producer, ledger, 0, 30));

            // When the broker stops mid-stream, 15 records are produced while it is down (3 s), and it comes back on the
            // same port and data; then the stream goes on
            broker.close();
            List<Future<RecordMetadata>> duringOutage = send(producer, ledger, 30, 45, Duration.ofMillis(200));
            assertThat(duringOutage).as("records produced while the broker is down are held, not acknowledged").noneMatch(Future::isDone);
            broker = EmbeddedKafka.start(port, Optional.of(data), Map.of());
            s.awaitLeaders(Duration.ofSeconds(60));
            acknowledged(duringOutage);
            acknowledged(send(producer, ledger, 45, 75));

            // Then every input is accounted for once: a decision for each valid record, a dead letter for each poison pill
            DeliveryLedger.Outputs outputs = ledger.awaitEveryInputAccountedFor(Duration.ofSeconds(120));
            report("broker restart", delivery, ledger, outputs, sidecar);
            if (delivery.equals("exactly-once")) {
                assertThat(outputs.duplicates()).as("duplicates seen by a read_committed reader").isZero();
            }
        } finally {
            broker.close();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"at-least-once", "exactly-once"})
    void outputsThatCannotBeWrittenAreRetriedByRewindingUntilTheirTopicIsBack(String delivery, KafkaBroker kafka) throws Exception {
        // Given a sidecar whose producer gives up on a missing topic after 2 s, deciding the first records
        Scenario s = Scenario.create(dir, kafka.bootstrap(), SEED, "delivery: " + delivery + "\n");
        Files.writeString(s.configFile, Files.readString(s.configFile).replace("  consumer:\n", "  producer:\n    max.block.ms: \"2000\"\n  consumer:\n"));
        Set<String> inputs = new HashSet<>();
        try (Sidecar sidecar = Sidecar.start(s.config());
                Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrap()))) {
            Awaitility.await().atMost(Duration.ofSeconds(60)).until(sidecar::ready);
            produce(s, 0, 16, inputs);
            assertThat(decided(s, inputs.size()).keySet()).isEqualTo(inputs);

            // When the decisions topic disappears while records keep coming
            admin.deleteTopics(List.of(s.topic(TopicRole.DECISIONS))).all().get(30, TimeUnit.SECONDS);
            Awaitility.await().atMost(Duration.ofSeconds(30))
                    .until(() -> !admin.listTopics().names().get().contains(s.topic(TopicRole.DECISIONS)));
            produce(s, 16, 32, inputs);

            // Then the sidecar turns unready and rewinds, again and again, without losing or committing anything
            Awaitility.await().atMost(Duration.ofSeconds(60)).until(() -> !sidecar.ready());
            Awaitility.await().atMost(Duration.ofSeconds(60)).until(() -> sidecar.metrics().recoveries.get() >= 1);

            // And once the topic is back, every input is decided and the sidecar is ready again
            TopicAdmin.createAll(admin, s.catalog);
            Map<String, Integer> seen = decided(s, 16);
            System.out.println("FaultsIT missing output topic " + delivery + ": " + seen.size() + " of the 16 later inputs decided, duplicates "
                    + duplicates(seen) + ", recoveries " + sidecar.metrics().recoveries.get());
            Set<String> later = new HashSet<>(inputs);
            later.removeIf(k -> Integer.parseInt(k.substring(k.indexOf('@') + 1)) < 8);
            assertThat(seen.keySet()).isEqualTo(later);
            if (delivery.equals("exactly-once")) {
                assertThat(duplicates(seen)).as("duplicates seen by a read_committed reader").isZero();
            }
            Awaitility.await().atMost(Duration.ofSeconds(60)).until(sidecar::ready);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"at-least-once", "exactly-once"})
    void everyInputIsAccountedForAcrossARebalanceToASecondInstanceAndTheFirstOnesShutdown(String delivery, KafkaBroker kafka)
            throws Exception {
        // Given one sidecar consuming a stream with one record in five a poison pill
        Scenario s = Scenario.create(dir, kafka.bootstrap(), SEED, "delivery: " + delivery + "\n");
        DeliveryLedger ledger = new DeliveryLedger(s, 8);
        Sidecar first = Sidecar.start(s.config());
        try (KafkaProducer<String, byte[]> producer = s.producer()) {
            Awaitility.await().atMost(Duration.ofSeconds(60)).until(first::ready);
            acknowledged(send(producer, ledger, 0, 20));

            // When a second instance joins mid-stream (a cooperative rebalance moves some partitions to it), and the first
            // shuts down while records keep coming (the second takes all partitions)
            try (Sidecar second = Sidecar.start(s.config())) {
                acknowledged(send(producer, ledger, 20, 40));
                Awaitility.await().atMost(Duration.ofSeconds(60)).until(second::ready);
                first.close();
                acknowledged(send(producer, ledger, 40, 80));

                // Then every input is accounted for once, by one of them
                DeliveryLedger.Outputs outputs = ledger.awaitEveryInputAccountedFor(Duration.ofSeconds(120));
                report("rebalance", delivery, ledger, outputs, second);
                if (delivery.equals("exactly-once")) {
                    assertThat(outputs.duplicates()).as("duplicates seen by a read_committed reader").isZero();
                }
                assertThat(second.metrics().assignments.get()).isGreaterThanOrEqualTo(2);
            }
        } finally {
            first.close();
        }
    }

    /** Sends records [from, to) of the ledger's stream, 20 ms apart. */
    private static List<Future<RecordMetadata>> send(KafkaProducer<String, byte[]> producer, DeliveryLedger ledger, int from, int to)
            throws InterruptedException {
        return send(producer, ledger, from, to, Duration.ofMillis(20));
    }

    private static List<Future<RecordMetadata>> send(KafkaProducer<String, byte[]> producer, DeliveryLedger ledger, int from, int to,
            Duration spacing) throws InterruptedException {
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        for (int i = from; i < to; i++) {
            sent.add(producer.send(ledger.record(i)));
            Thread.sleep(spacing.toMillis());
        }
        return sent;
    }

    /** Waits for the broker to acknowledge every send (a failed one fails the test: its input would not exist). */
    private static void acknowledged(List<Future<RecordMetadata>> sent) throws Exception {
        for (Future<RecordMetadata> f : sent) {
            f.get(120, TimeUnit.SECONDS);
        }
    }

    private static void report(String fault, String delivery, DeliveryLedger ledger, DeliveryLedger.Outputs outputs, Sidecar sidecar) {
        System.out.println("FaultsIT " + fault + " " + delivery + ": " + ledger.sent() + " inputs (" + ledger.poisonSent()
                + " poison pills), duplicates " + outputs.duplicates() + ", recoveries of the last sidecar "
                + (long) sidecar.metrics().recoveries.get());
    }

    private static void produce(Scenario s, int from, int to, Set<String> inputs) throws Exception {
        try (KafkaProducer<String, byte[]> p = s.producer()) {
            for (int i = from; i < to; i++) {
                String request = "req-" + (i % 8);
                long position = (long) (i / 8) * Scenario.TOKENS_PER_RECORD;
                p.send(new ProducerRecord<>(s.topic(TopicRole.ACTIVATIONS), request, s.record(request, i * 4, position, false)));
                inputs.add(request + "@" + position);
                Thread.sleep(20);
            }
            p.flush();
        }
    }

    private static Map<String, Integer> decided(Scenario s, int expected) throws Exception {
        Map<String, Integer> seen = new HashMap<>();
        long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
        while (seen.size() < expected && System.nanoTime() < deadline) {
            seen.clear();
            List<ConsumerRecord<String, byte[]>> records = s.read(TopicRole.DECISIONS, Integer.MAX_VALUE, Duration.ofSeconds(3));
            for (ConsumerRecord<String, byte[]> r : records) {
                Decision d = CODEC.decodeDecision(r.value());
                seen.merge(d.requestId() + "@" + d.position(), 1, Integer::sum);
            }
        }
        return seen;
    }

    private static int duplicates(Map<String, Integer> seen) {
        return seen.values().stream().mapToInt(n -> n - 1).sum();
    }
}
