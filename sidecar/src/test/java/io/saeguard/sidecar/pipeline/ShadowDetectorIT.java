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
import io.saeguard.topics.events.ShadowDecision;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
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
import org.awaitility.Awaitility;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * A shadow detector against a real broker (issue 20, item 1): beside the scenario's live detector, a detector in
 * {@code mode: shadow} that blocks every record. Invariant: the decisions and alerts are exactly the live detector's,
 * and {@code saeguard.shadow} holds one block per record, marked shadow, delivered exactly once with its record.
 */
@ExtendWith(KafkaBrokerExtension.class)
class ShadowDetectorIT {
    private static final long SEED = new Random().nextLong() & 0x7fffffffL;
    private static final EventCodec CODEC = new EventCodec();
    private static final int REQUESTS = 4;
    private static final int CHUNKS = 3;

    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        System.out.println("ShadowDetectorIT seed=" + SEED);
        PythonSaeFixtures.assumeAvailable();
    }

    @Test
    void aShadowDetectorThatBlocksEverythingChangesNoDecisionAndPublishesOneBlockPerRecord(KafkaBroker kafka) throws Exception {
        // Given a sidecar (exactly-once) with the planted live detector and a shadow one whose only band blocks from score 0
        Scenario s = Scenario.create(dir, kafka.bootstrap(), SEED, "delivery: exactly-once\n");
        Path shadow = dir.resolve("trial.yaml");
        Files.writeString(shadow, """
                id: trial
                sae: %s
                mode: shadow
                rule:
                  kind: features
                  features:
                    - id: %d
                      threshold: 1.0
                aggregate: token
                policy:
                  alert_at: 0.0
                  bands:
                    - min: 0.0
                      action: block
                """.formatted(Scenario.SAE_ID, s.feature));
        s.addDetector(shadow);
        int records = REQUESTS * CHUNKS;
        Map<String, Integer> firstToken = new HashMap<>();
        try (Sidecar sidecar = Sidecar.start(s.config()); KafkaProducer<String, byte[]> producer = s.producer()) {
            // When 12 records (4 requests x 3 chunks) arrive
            for (int r = 0; r < REQUESTS; r++) {
                for (int c = 0; c < CHUNKS; c++) {
                    String request = "req-" + r;
                    int first = (r * CHUNKS + c) * Scenario.TOKENS_PER_RECORD;
                    long position = (long) c * Scenario.TOKENS_PER_RECORD;
                    firstToken.put(request + "@" + position, first);
                    producer.send(new ProducerRecord<>(s.topic(TopicRole.ACTIVATIONS), request, s.record(request, first, position, c == CHUNKS - 1)));
                }
            }
            producer.flush();
            Awaitility.await().atMost(Duration.ofSeconds(90)).pollInterval(Duration.ofMillis(500))
                    .until(() -> s.readToEnd(TopicRole.DECISIONS).size() >= records && s.readToEnd(TopicRole.SHADOW).size() >= records);

            // Then every decision is the live detector's alone, as if the shadow detector were not there
            List<Decision> decisions = new ArrayList<>();
            for (ConsumerRecord<String, byte[]> r : s.readToEnd(TopicRole.DECISIONS)) {
                decisions.add(CODEC.decodeDecision(r.value()));
            }
            assertThat(decisions).hasSize(records);
            int fired = 0;
            for (Decision d : decisions) {
                Integer first = firstToken.get(d.requestId() + "@" + d.position());
                assertThat(first).as("a decision for an input that exists: " + d.requestId() + "@" + d.position()).isNotNull();
                String expected = s.expectedAction(first, d.position());
                assertThat(d.action().wireName()).as("action of " + d.requestId() + "@" + d.position()).isEqualTo(expected);
                if (expected.equals("allow")) {
                    assertThat(d.detector()).isEmpty();
                } else {
                    fired++;
                    assertThat(d.detector()).contains(Scenario.DETECTOR);
                }
            }
            assertThat(fired).as("the scenario must exercise the live detector firing").isPositive();
            assertThat(fired).as("the live detector must also allow some records").isLessThan(records);

            // And no alert names the shadow detector
            List<String> alerting = new ArrayList<>();
            for (ConsumerRecord<String, byte[]> r : s.readToEnd(TopicRole.ALERTS)) {
                alerting.add(CODEC.decodeAlert(r.value()).detector());
            }
            assertThat(alerting).isNotEmpty().allSatisfy(d -> assertThat(d).isEqualTo(Scenario.DETECTOR));

            // And saeguard.shadow holds the shadow detector's block for every record, exactly one each, keyed by request
            List<ConsumerRecord<String, byte[]>> shadowRecords = s.readToEnd(TopicRole.SHADOW);
            List<String> shadowed = new ArrayList<>();
            for (ConsumerRecord<String, byte[]> r : shadowRecords) {
                assertThat(new String(r.value(), StandardCharsets.UTF_8)).contains("\"shadow\":true");
                ShadowDecision sd = CODEC.decodeShadow(r.value());
                assertThat(sd.detector()).isEqualTo("trial");
                assertThat(sd.decision().action()).isEqualTo(Action.BLOCK);
                assertThat(sd.decision().requestId()).isEqualTo(r.key());
                assertThat(sd.decision().latencyMs()).isPresent();
                shadowed.add(sd.decision().requestId() + "@" + sd.decision().position());
            }
            assertThat(shadowed).doesNotHaveDuplicates().containsExactlyInAnyOrderElementsOf(firstToken.keySet());

            // And the metrics count the shadow verdicts apart, with mode="shadow"
            String metrics = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + sidecar.httpPort()
                    + "/metrics")).build(), HttpResponse.BodyHandlers.ofString()).body();
            assertThat(metrics).contains("saeguard_detector_verdicts_total{action=\"block\",detector=\"trial\",mode=\"shadow\"} " + records + ".0");
            assertThat(metrics).doesNotContain("saeguard_decisions_total{action=\"block\",detector=\"trial\"}");
        }
    }
}
