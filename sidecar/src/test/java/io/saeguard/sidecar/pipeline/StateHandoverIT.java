package io.saeguard.sidecar.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import io.saeguard.sae.PythonSaeFixtures;
import io.saeguard.sidecar.app.Sidecar;
import io.saeguard.sidecar.testing.KafkaBroker;
import io.saeguard.sidecar.testing.KafkaBrokerExtension;
import io.saeguard.topics.catalog.TopicRole;
import io.saeguard.topics.events.Action;
import io.saeguard.topics.events.Decision;
import io.saeguard.topics.events.EventCodec;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The handover of issue 19 (item 3): 20 requests, each with a planted token in its first chunk and a detector with
 * {@code aggregate: max}; sidecar A decides the first chunks, sidecar B joins the group (a rebalance moves partitions
 * mid-request), A stops gracefully, and B decides the second chunks. Invariant: every second chunk is still flagged by
 * the max detector, as on one uninterrupted sidecar (before the state topic: 0 of 20).
 */
@ExtendWith(KafkaBrokerExtension.class)
class StateHandoverIT {
    private static final long SEED = new Random().nextLong() & 0x7fffffffL;
    private static final EventCodec CODEC = new EventCodec();
    private static final int REQUESTS = 20;

    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        System.out.println("StateHandoverIT seed=" + SEED);
        PythonSaeFixtures.assumeAvailable();
    }

    @ParameterizedTest
    @ValueSource(strings = {"at-least-once", "exactly-once"})
    void requestsHandedToAnotherSidecarMidwayKeepTheirMaxScore(String delivery, KafkaBroker kafka) throws Exception {
        // Given the planted feature under a max detector, a first chunk that fires it and a second that does not
        Scenario s = Scenario.create(dir, kafka.bootstrap(), SEED, "batching:\n  max_delay_ms: 5\ndelivery: " + delivery + "\n");
        Path held = dir.resolve("held.yaml");
        Files.writeString(held, """
                id: held
                sae: %s
                rule:
                  kind: features
                  features:
                    - id: %d
                      threshold: %s
                aggregate: max
                policy:
                  bands:
                    - min: 1.0
                      action: flag
                """.formatted(Scenario.SAE_ID, s.feature, Float.toString(s.threshold)));
        s.addDetector(held);
        int firing = -1;
        int quiet = -1;
        for (int first = 0; first + Scenario.TOKENS_PER_RECORD <= s.tokens; first++) {
            if (firing < 0 && s.expectedScore(first, 0) >= 1.0) {
                firing = first;
            }
            if (quiet < 0 && s.expectedScore(first, Scenario.TOKENS_PER_RECORD) < 1.0) {
                quiet = first;
            }
        }
        assertThat(firing).as("a chunk that fires").isNotNegative();
        assertThat(quiet).as("a chunk that does not").isNotNegative();

        List<Sidecar> running = new ArrayList<>();
        try (KafkaProducer<String, byte[]> producer = s.producer()) {
            // When A decides every first chunk, B joins, A leaves gracefully, and B decides the second chunks
            Sidecar a = Sidecar.start(s.config());
            running.add(a);
            for (int r = 0; r < REQUESTS; r++) {
                producer.send(new ProducerRecord<>(s.topic(TopicRole.ACTIVATIONS), "req-" + r, s.record("req-" + r, firing, 0, false)));
            }
            producer.flush();
            awaitDecisions(s, REQUESTS);
            Sidecar b = Sidecar.start(s.config());
            running.add(b);
            a.close();
            running.remove(a);
            for (int r = 0; r < REQUESTS; r++) {
                producer.send(new ProducerRecord<>(s.topic(TopicRole.ACTIVATIONS), "req-" + r,
                        s.record("req-" + r, quiet, Scenario.TOKENS_PER_RECORD, true)));
            }
            producer.flush();
            List<Decision> decisions = awaitDecisions(s, 2 * REQUESTS);

            // Then every second chunk is flagged by the max detector, as the request's second decision
            List<Decision> second = decisions.stream().filter(d -> d.position() == Scenario.TOKENS_PER_RECORD).toList();
            assertThat(second).hasSize(REQUESTS);
            assertThat(second).allSatisfy(d -> {
                assertThat(d.action()).as(d.requestId()).isEqualTo(Action.FLAG);
                assertThat(d.detector()).as(d.requestId()).contains("held");
                assertThat(d.seq()).as(d.requestId()).isEqualTo(1);
            });
            // and the ended requests' state is a tombstone: nothing is restored for them any more
            List<ConsumerRecord<String, byte[]>> state = s.readToEnd(TopicRole.STATE);
            assertThat(state.stream().filter(r -> r.value() == null).map(ConsumerRecord::key).distinct().count()).isEqualTo(REQUESTS);
        } finally {
            for (Sidecar sc : running) {
                sc.close();
            }
        }
    }

    /** The distinct decisions (by request and position) once there are {@code count} of them. */
    private static List<Decision> awaitDecisions(Scenario s, int count) {
        List<Decision> out = new ArrayList<>();
        Awaitility.await().atMost(Duration.ofSeconds(120)).pollInterval(Duration.ofMillis(300)).until(() -> {
            out.clear();
            java.util.Set<String> seen = new java.util.HashSet<>();
            for (ConsumerRecord<String, byte[]> r : s.readToEnd(TopicRole.DECISIONS)) {
                Decision d = CODEC.decodeDecision(r.value());
                if (seen.add(d.requestId() + "@" + d.position())) {
                    out.add(d);
                }
            }
            return out.size() >= count;
        });
        return List.copyOf(out);
    }
}
