package io.saeguard.sidecar.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import io.saeguard.sae.PythonSaeFixtures;
import io.saeguard.sae.TestSeed;
import io.saeguard.sidecar.app.Sidecar;
import io.saeguard.sidecar.testing.KafkaBroker;
import io.saeguard.sidecar.testing.KafkaBrokerExtension;
import io.saeguard.topics.catalog.TopicRole;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The detector registry across replicas (issue 19 item 2), black box over HTTP on a real broker: sidecars in one group
 * converge on a {@code PUT} made to any one of them, a restarted one comes back with it (the topic wins over its file),
 * a {@code DELETE} removes the detector everywhere and stays removed, and an invalid {@code PUT} publishes nothing.
 */
@ExtendWith(KafkaBrokerExtension.class)
class DetectorRegistryIT {
    private static final long SEED = TestSeed.draw("DetectorRegistryIT");
    private static final HttpClient HTTP = HttpClient.newHttpClient();

    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        PythonSaeFixtures.assumeAvailable();
    }

    private static URI detector(Sidecar s, String id) {
        return URI.create("http://127.0.0.1:" + s.httpPort() + "/v1/detectors/" + id);
    }

    private static HttpResponse<String> get(Sidecar s, String id) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(detector(s, id)).build(), HttpResponse.BodyHandlers.ofString());
    }

    private static HttpResponse<String> put(Sidecar s, String id, String yaml) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(detector(s, id)).header("Content-Type", "application/yaml")
                .PUT(HttpRequest.BodyPublishers.ofString(yaml)).build(), HttpResponse.BodyHandlers.ofString());
    }

    private static HttpResponse<String> delete(Sidecar s, String id) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(detector(s, id)).DELETE().build(), HttpResponse.BodyHandlers.ofString());
    }

    private static List<Sidecar> startReady(Scenario s, int n) throws Exception {
        List<Sidecar> started = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            started.add(Sidecar.start(s.config()));
        }
        for (Sidecar sc : started) {
            Awaitility.await().atMost(Duration.ofSeconds(90)).until(sc::ready);
        }
        return started;
    }

    private static void closeAll(List<Sidecar> sidecars) {
        sidecars.forEach(Sidecar::close);
    }

    /** The registry topic's end offset now. */
    private static long endOffset(Scenario s) {
        try (KafkaConsumer<String, byte[]> c = new KafkaConsumer<>(Map.of(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, s.bootstrap),
                new StringDeserializer(), new ByteArrayDeserializer())) {
            TopicPartition tp = new TopicPartition(s.topic(TopicRole.DETECTORS), 0);
            return c.endOffsets(List.of(tp), Duration.ofSeconds(30)).get(tp);
        }
    }

    @Test
    void threeReplicasConvergeOnAPutWithinASecondAndARestartedReplicaComesBackWithIt(KafkaBroker kafka) throws Exception {
        // Given three sidecars in one group, started from the same detector file
        Scenario s = Scenario.create(dir, kafka.bootstrap(), SEED, "");
        String original = Files.readString(dir.resolve("planted.yaml"));
        List<Sidecar> replicas = startReady(s, 3);
        try {
            // When one of them takes a PUT of a new version
            String raised = original.replaceFirst("threshold: .*", "threshold: 12345.5");
            long t0 = System.nanoTime();
            HttpResponse<String> answer = put(replicas.get(0), Scenario.DETECTOR, raised);
            long answeredNanos = System.nanoTime() - t0;

            // Then it answers once it applied it, and every replica serves the new version within a second of the PUT
            assertThat(answer.statusCode()).as(answer.body()).isEqualTo(200);
            assertThat(answer.body()).contains("\"replaced\"");
            assertThat(get(replicas.get(0), Scenario.DETECTOR).body()).contains("12345.5");
            Awaitility.await().atMost(Duration.ofSeconds(5)).pollInterval(Duration.ofMillis(5)).until(() -> {
                for (Sidecar r : replicas) {
                    if (!get(r, Scenario.DETECTOR).body().contains("12345.5")) {
                        return false;
                    }
                }
                return true;
            });
            long convergedNanos = System.nanoTime() - t0;
            System.out.printf("DetectorRegistryIT: PUT answered after %.1f ms; all 3 replicas serve it after %.1f ms%n",
                    answeredNanos / 1e6, convergedNanos / 1e6);
            assertThat(Duration.ofNanos(convergedNanos)).isLessThan(Duration.ofSeconds(1));

            // And the record says who and when
            List<ConsumerRecord<String, byte[]>> log = Scenario.readToEnd(s.bootstrap, s.topic(TopicRole.DETECTORS));
            ConsumerRecord<String, byte[]> last = log.get(log.size() - 1);
            assertThat(last.key()).isEqualTo(Scenario.DETECTOR);
            assertThat(new String(last.headers().lastHeader(DetectorRegistry.WHO).value(), StandardCharsets.UTF_8)).isEqualTo("anonymous");
            assertThat(last.headers().lastHeader(DetectorRegistry.WHEN)).isNotNull();

            // When one replica restarts (its detector file still has the old threshold)
            replicas.remove(2).close();
            replicas.add(Sidecar.start(s.config()));

            // Then it comes back ready with the registry's version, not the file's
            Awaitility.await().atMost(Duration.ofSeconds(90)).until(replicas.get(2)::ready);
            assertThat(get(replicas.get(2), Scenario.DETECTOR).body()).contains("12345.5");
        } finally {
            closeAll(replicas);
        }
    }

    @Test
    void aDeleteRemovesTheDetectorFromEveryReplicaAndARestartDoesNotBringItBackFromItsFile(KafkaBroker kafka) throws Exception {
        // Given two sidecars started from the same detector file
        Scenario s = Scenario.create(dir, kafka.bootstrap(), SEED, "");
        List<Sidecar> replicas = startReady(s, 2);
        try {
            // When the detector is deleted through one of them
            HttpResponse<String> answer = delete(replicas.get(0), Scenario.DETECTOR);

            // Then it answers removed, and neither replica has it
            assertThat(answer.statusCode()).as(answer.body()).isEqualTo(200);
            assertThat(get(replicas.get(0), Scenario.DETECTOR).statusCode()).isEqualTo(404);
            Awaitility.await().atMost(Duration.ofSeconds(5)).pollInterval(Duration.ofMillis(10))
                    .until(() -> get(replicas.get(1), Scenario.DETECTOR).statusCode() == 404);
            assertThat(delete(replicas.get(1), Scenario.DETECTOR).statusCode()).isEqualTo(404);

            // And a restarted replica, whose config still names the file, stays without it
            replicas.remove(1).close();
            replicas.add(Sidecar.start(s.config()));
            Awaitility.await().atMost(Duration.ofSeconds(90)).until(replicas.get(1)::ready);
            assertThat(get(replicas.get(1), Scenario.DETECTOR).statusCode()).isEqualTo(404);
        } finally {
            closeAll(replicas);
        }
    }

    @Test
    void anInvalidPutIsA400AndPublishesNothing(KafkaBroker kafka) throws Exception {
        // Given a sidecar and the registry's end offset
        Scenario s = Scenario.create(dir, kafka.bootstrap(), SEED, "");
        String yaml = Files.readString(dir.resolve("planted.yaml"));
        try (Sidecar sidecar = Sidecar.start(s.config())) {
            Awaitility.await().atMost(Duration.ofSeconds(90)).until(sidecar::ready);
            long before = endOffset(s);

            // When definitions that do not parse, name an SAE it lacks, or a feature past d_sae are PUT
            for (String[] bad : new String[][] {{yaml.replace("kind: features", "kind: nonsense"), "nonsense"},
                    {yaml.replace("sae: " + Scenario.SAE_ID, "sae: not-loaded"), "unknown SAE id 'not-loaded'"},
                    {yaml.replaceFirst("- id: \\d+", "- id: " + s.dSae), "has " + s.dSae + " features"}}) {
                HttpResponse<String> r = put(sidecar, Scenario.DETECTOR, bad[0]);

                // Then each is a 400 naming the problem
                assertThat(r.statusCode()).as(r.body()).isEqualTo(400);
                assertThat(r.body()).contains(bad[1]);
            }

            // And the registry topic did not grow
            assertThat(endOffset(s)).isEqualTo(before);
        }
    }
}
