package io.saeguard.sidecar.pipeline;

import io.saeguard.sidecar.app.Sidecar;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.saeguard.sae.PythonSaeFixtures;
import io.saeguard.sidecar.testing.KafkaBroker;
import io.saeguard.sidecar.testing.KafkaBrokerExtension;
import io.saeguard.topics.catalog.TopicRole;
import io.saeguard.topics.events.Action;
import io.saeguard.topics.events.Decision;
import io.saeguard.topics.events.EventCodec;
import io.saeguard.topics.safetensors.SafetensorsFile;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Detector policies that only the running sidecar can show: a reloaded detector's steering direction reaches the
 * {@code saeguard.steering} registry before a decision names it, and a detector's deadline and fail mode decide a
 * late record, counted in {@code saeguard_detector_failures_total}.
 */
@ExtendWith(KafkaBrokerExtension.class)
class DetectorPolicyIT {
    private static final long SEED = Long.getLong("saeguard.it.seed", new Random().nextLong() & 0x7fffffffL);
    private static final EventCodec CODEC = new EventCodec();

    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        System.out.println("DetectorPolicyIT seed=" + SEED);
        assumeTrue(PythonSaeFixtures.available(), "python3-torch is required");
    }

    @Test
    void aDetectorAddedAtRunTimePublishesItsSteeringDirectionBeforeADecisionNamesIt(KafkaBroker kafka) throws Exception {
        Scenario s = Scenario.create(dir, kafka.bootstrap(), SEED, "");
        int firing = firstFiringChunk(s);
        try (Sidecar sidecar = Sidecar.start(s.config())) {
            // Given: nothing steers at start (the planted detector flags and blocks)
            assertThat(Scenario.readToEnd(s.bootstrap, s.topic(TopicRole.STEERING))).isEmpty();

            // When the planted detector is silenced (its block would outrank a steer) and a steering detector on the
            // planted feature is added over HTTP
            String silenced = java.nio.file.Files.readString(dir.resolve("planted.yaml")).replaceFirst("threshold: .*", "threshold: 1.0e9");
            HttpResponse<String> silence = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:"
                    + sidecar.httpPort() + "/v1/detectors/" + Scenario.DETECTOR)).PUT(HttpRequest.BodyPublishers.ofString(silenced)).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(silence.statusCode()).as(silence.body()).isEqualTo(200);
            String steerer = """
                    id: steerer
                    sae: %s
                    rule: {kind: features, match: any, features: [{id: %d, threshold: %s}]}
                    aggregate: token
                    policy: {bands: [{min: 1.0, action: steer, tier: medium, coefficient: -6.5}]}
                    """.formatted(Scenario.SAE_ID, s.feature, Float.toString(s.threshold));
            HttpResponse<String> put = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:"
                    + sidecar.httpPort() + "/v1/detectors/steerer")).PUT(HttpRequest.BodyPublishers.ofString(steerer)).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(put.statusCode()).as(put.body()).isEqualTo(200);

            // Then the registry holds its unit decoder row, already when the PUT has answered
            String vectorId = Scenario.SAE_ID + "/" + s.feature;
            List<ConsumerRecord<String, byte[]>> registry = Scenario.readToEnd(s.bootstrap, s.topic(TopicRole.STEERING));
            assertThat(registry).extracting(ConsumerRecord::key).containsExactly(vectorId);
            float[] published = SafetensorsFile.parse(ByteBuffer.wrap(registry.get(0).value())).tensor("vector").orElseThrow().toFloatArray();
            float[] expected = unitDecoderRow(s, s.feature);
            assertThat(published).hasSize(s.dIn);
            for (int i = 0; i < s.dIn; i++) {
                assertThat((double) published[i]).as("component " + i).isCloseTo(expected[i], within(1e-6));
            }

            // And a firing record's decision steers along that id; the vector was written before the decision
            produce(s, "steered", firing, System.currentTimeMillis());
            Decision d = awaitDecision(s, "steered");
            assertThat(d.action()).isEqualTo(Action.STEER);
            assertThat(d.vector().orElseThrow().id()).isEqualTo(vectorId);
            assertThat(d.vector().orElseThrow().coefficient()).isEqualTo(-6.5);
            assertThat(registry.get(0).timestamp()).isLessThanOrEqualTo(d.ts().orElseThrow());

            // And re-adding the same detector publishes nothing new (only new or changed directions are sent)
            HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + sidecar.httpPort()
                    + "/v1/detectors/steerer")).PUT(HttpRequest.BodyPublishers.ofString(steerer)).build(), HttpResponse.BodyHandlers.ofString());
            assertThat(Scenario.readToEnd(s.bootstrap, s.topic(TopicRole.STEERING))).hasSize(1);
        }
    }

    @Test
    void aLateRecordIsDecidedByTheDetectorsFailModeAndCounted(KafkaBroker kafka) throws Exception {
        Scenario s = Scenario.create(dir, kafka.bootstrap(), SEED, "");
        int quiet = firstQuietChunk(s);
        try (Sidecar sidecar = Sidecar.start(s.config())) {
            // Given: a fail-closed detector with a 30 s deadline whose bands are never reached by a quiet chunk
            String guarded = """
                    id: guarded
                    sae: %s
                    rule: {kind: features, match: any, features: [{id: %d, threshold: %s}]}
                    aggregate: token
                    policy: {fail: closed, deadline_ms: 30000, bands: [{min: 1.0, action: flag}, {min: 2.0, action: block}]}
                    """.formatted(Scenario.SAE_ID, s.feature, Float.toString(s.threshold));
            HttpResponse<String> put = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:"
                    + sidecar.httpPort() + "/v1/detectors/guarded")).PUT(HttpRequest.BodyPublishers.ofString(guarded)).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(put.statusCode()).as(put.body()).isEqualTo(200);

            // When one quiet record arrives on time and one produced 10 minutes ago
            produce(s, "on-time", quiet, System.currentTimeMillis());
            produce(s, "late", quiet, System.currentTimeMillis() - Duration.ofMinutes(10).toMillis());

            // Then the on-time one is allowed; the late one is blocked by the fail mode, with the reason
            assertThat(awaitDecision(s, "on-time").action()).isEqualTo(Action.ALLOW);
            Decision late = awaitDecision(s, "late");
            assertThat(late.action()).isEqualTo(Action.BLOCK);
            assertThat(late.detector()).contains("guarded");
            assertThat(late.reason().orElseThrow()).contains("deadline missed").contains("> 30000 ms), fail closed -> block");

            // And the miss is counted once, for that detector only
            org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> assertThat(metrics(sidecar))
                    .contains("saeguard_detector_failures_total{detector=\"guarded\",reason=\"deadline\"} 1.0")
                    .doesNotContain("saeguard_detector_failures_total{detector=\"planted\""));
        }
    }

    private static String metrics(Sidecar sidecar) throws Exception {
        return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + sidecar.httpPort() + "/metrics")).build(),
                HttpResponse.BodyHandlers.ofString()).body();
    }

    /** The first token of a chunk (at request position 4, past BOS) whose score reaches the flag band; skips the test if none. */
    private static int firstFiringChunk(Scenario s) {
        for (int first = 0; first + Scenario.TOKENS_PER_RECORD <= s.tokens; first += Scenario.TOKENS_PER_RECORD) {
            if (s.expectedScore(first, 4) >= 1.0) {
                return first;
            }
        }
        assumeTrue(false, "no firing chunk in this seed");
        return -1;
    }

    /** The first token of a chunk (at request position 4) that stays below every band. */
    private static int firstQuietChunk(Scenario s) {
        for (int first = 0; first + Scenario.TOKENS_PER_RECORD <= s.tokens; first += Scenario.TOKENS_PER_RECORD) {
            if (s.expectedScore(first, 4) < 1.0) {
                return first;
            }
        }
        assumeTrue(false, "no quiet chunk in this seed");
        return -1;
    }

    /** W_dec[feature] / ‖W_dec[feature]‖ from the scenario's SAELens weights (W_dec is [d_sae, d_in]). */
    private static float[] unitDecoderRow(Scenario s, int feature) throws Exception {
        float[] wDec = SafetensorsFile.open(s.dir.resolve("sae-case/sae/sae_weights.safetensors")).tensor("W_dec").orElseThrow().toFloatArray();
        float[] row = new float[s.dIn];
        double norm = 0;
        for (int i = 0; i < s.dIn; i++) {
            row[i] = wDec[feature * s.dIn + i];
            norm += (double) row[i] * row[i];
        }
        for (int i = 0; i < s.dIn; i++) {
            row[i] = (float) (row[i] / Math.sqrt(norm));
        }
        return row;
    }

    private static void produce(Scenario s, String request, int first, long timestamp) throws Exception {
        Map<String, Object> props = Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, s.bootstrap, ProducerConfig.ACKS_CONFIG, "all");
        try (KafkaProducer<String, byte[]> p = new KafkaProducer<>(props, new StringSerializer(), new ByteArraySerializer())) {
            p.send(new ProducerRecord<>(s.topic(TopicRole.ACTIVATIONS), null, timestamp, request, s.record(request, first, 4, true))).get();
        }
    }

    private static Decision awaitDecision(Scenario s, String request) throws Exception {
        return CODEC.decodeDecision(Scenario.awaitKey(s.bootstrap, s.topic(TopicRole.DECISIONS), request).value());
    }
}
