package io.saeguard.sidecar.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.saeguard.sae.PythonSaeFixtures;
import io.saeguard.sidecar.app.Sidecar;
import io.saeguard.sidecar.cli.Main;
import io.saeguard.sidecar.testing.KafkaBroker;
import io.saeguard.sidecar.testing.KafkaBrokerExtension;
import io.saeguard.topics.catalog.TopicRole;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeSet;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code saeguard replay} against a real broker (issue 20, item 2): a running sidecar records the decisions of a stream
 * whose detector aggregates over the request ({@code max}), then the stream is replayed beside it. The reference is
 * computed from PyTorch's codes and the rule alone ({@link Scenario}). Invariants: with the recorded config the replay
 * agrees on every record; with one band threshold changed it lists exactly the records whose reference action changed;
 * and replaying writes nothing to the decisions topic.
 */
@ExtendWith(KafkaBrokerExtension.class)
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ReplayIT {
    private static final long SEED = new Random().nextLong() & 0x7fffffffL;
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int REQUESTS = 6;
    private static final int CHUNKS = 4;

    private Path dir;
    private Scenario s;
    private Sidecar sidecar;
    private Instant from;
    private final Map<String, Double> referenceScore = new HashMap<>(); // "request@position" -> the request's max score so far

    @BeforeAll
    void recordAStream(KafkaBroker kafka, @TempDir Path tempDir) throws Exception {
        dir = tempDir;
        System.out.println("ReplayIT seed=" + SEED);
        PythonSaeFixtures.assumeAvailable();
        s = Scenario.create(dir, kafka.bootstrap(), SEED, "");
        Path planted = dir.resolve("planted.yaml");
        Files.writeString(planted, Files.readString(planted).replace("aggregate: token", "aggregate: max"));
        from = Instant.now().minusSeconds(1);
        sidecar = Sidecar.start(s.config());
        try (KafkaProducer<String, byte[]> producer = s.producer()) {
            for (int r = 0; r < REQUESTS; r++) {
                String request = "req-" + r;
                double max = 0;
                for (int c = 0; c < CHUNKS; c++) {
                    int first = (r * CHUNKS + c) * Scenario.TOKENS_PER_RECORD;
                    long position = (long) c * Scenario.TOKENS_PER_RECORD;
                    max = Math.max(max, s.expectedScore(first, position));
                    referenceScore.put(request + "@" + position, max);
                    producer.send(new ProducerRecord<>(s.topic(TopicRole.ACTIVATIONS), request, s.record(request, first, position, c == CHUNKS - 1)));
                }
            }
        }
        Awaitility.await().atMost(Duration.ofSeconds(90)).pollInterval(Duration.ofMillis(500))
                .until(() -> s.readToEnd(TopicRole.DECISIONS).size() >= REQUESTS * CHUNKS);
    }

    @AfterAll
    void stop() throws Exception {
        if (sidecar != null) {
            sidecar.close();
        }
    }

    @Test
    void replayingWithTheRecordedConfigAgreesOnEveryRecordAndWritesNothing() throws Exception {
        // Given
        Path out = dir.resolve("same.json");
        int decisionsBefore = s.readToEnd(TopicRole.DECISIONS).size();

        // When
        int exit = Main.execute("replay", "--config", s.configFile.toString(), "--from", from.toString(), "--out", out.toString(), "--report",
                dir.resolve("same.md").toString());

        // Then
        assertThat(exit).isZero();
        JsonNode report = JSON.readTree(out.toFile());
        assertThat(report.get("records").asLong()).isEqualTo(REQUESTS * CHUNKS);
        assertThat(report.get("compared").asLong()).isEqualTo(REQUESTS * CHUNKS);
        assertThat(report.get("agreement").asDouble()).isEqualTo(1.0);
        assertThat(report.get("changed")).isEmpty();
        assertThat(report.get("detectors").has(Scenario.DETECTOR)).isTrue();
        assertThat(Files.readString(dir.resolve("same.md"))).contains("Nothing changed.");
        assertThat(s.readToEnd(TopicRole.DECISIONS)).hasSize(decisionsBefore);
    }

    @Test
    void replayingWithOneThresholdChangedListsExactlyTheRecordsTheReferenceSaysChanged() throws Exception {
        // Given the flag band's threshold moved to between two neighbouring reference scores below the block band
        TreeSet<Double> below = new TreeSet<>();
        referenceScore.values().stream().filter(v -> v > 0 && v < 1.5).forEach(below::add);
        List<Double> sorted = new ArrayList<>(below);
        assertThat(sorted).as("the scenario needs two distinct scores below the block band").hasSizeGreaterThanOrEqualTo(2);
        int mid = sorted.size() / 2;
        double flagAt = (sorted.get(mid - 1) + sorted.get(mid)) / 2;
        Path planted = dir.resolve("planted.yaml");
        Path changed = dir.resolve("planted-changed.yaml");
        String original = Files.readString(planted);
        assertThat(original).contains("- min: 1.0\n");
        Files.writeString(changed, original.replace("- min: 1.0\n", "- min: " + flagAt + "\n"));
        Path config = dir.resolve("saeguard-changed.yaml");
        Files.writeString(config, Files.readString(s.configFile).replace(planted.toString(), changed.toString()));
        Map<String, String[]> expected = new HashMap<>();
        referenceScore.forEach((key, score) -> {
            String before = action(score, 1.0);
            String after = action(score, flagAt);
            if (!before.equals(after)) {
                expected.put(key, new String[] {before, after});
            }
        });
        assertThat(expected).as("moving the threshold must change some records").isNotEmpty();
        Path out = dir.resolve("changed.json");

        // When
        int exit = Main.execute("replay", "--config", config.toString(), "--from", Long.toString(from.toEpochMilli()), "--out", out.toString());

        // Then
        assertThat(exit).isZero();
        JsonNode report = JSON.readTree(out.toFile());
        assertThat(report.get("compared").asLong()).isEqualTo(REQUESTS * CHUNKS);
        Map<String, String[]> listed = new HashMap<>();
        for (JsonNode c : report.get("changed")) {
            listed.put(c.get("request_id").asText() + "@" + c.get("position").asLong(), new String[] {c.get("before").asText(), c.get("after").asText()});
        }
        assertThat(listed).containsOnlyKeys(expected.keySet());
        listed.forEach((k, v) -> assertThat(v).as(k).containsExactly(expected.get(k)));
        assertThat(report.get("agreement").asDouble()).isEqualTo((REQUESTS * CHUNKS - expected.size()) / (double) (REQUESTS * CHUNKS));
    }

    private static String action(double score, double flagAt) {
        return score >= 1.5 ? "block" : score >= flagAt ? "flag" : "allow";
    }
}
