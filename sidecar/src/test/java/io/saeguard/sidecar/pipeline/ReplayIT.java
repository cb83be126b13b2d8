package io.saeguard.sidecar.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.saeguard.sae.PythonSaeFixtures;
import io.saeguard.sae.TestSeed;
import io.saeguard.sidecar.app.Sidecar;
import io.saeguard.sidecar.cli.Main;
import io.saeguard.sidecar.testing.KafkaBroker;
import io.saeguard.sidecar.testing.KafkaBrokerExtension;
import io.saeguard.topics.catalog.TopicRole;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
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
    private static final long SEED = TestSeed.draw("ReplayIT");
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
        // Given one band's threshold moved past one reference score s*, halfway to its neighbour, so s*'s record changes:
        // the block band's where the flag band fired (s* = the median of those scores), else the flag band's
        List<Double> scores = referenceScore.values().stream().filter(v -> v > 0).distinct().sorted().toList();
        List<Double> fired = scores.stream().filter(v -> v >= 1.0).toList();
        assertThat(scores).as("the planted feature must fire in the scenario").isNotEmpty();
        boolean moveBlock = !fired.isEmpty();
        double star = moveBlock ? fired.get(fired.size() / 2) : scores.get(scores.size() - 1);
        int at = scores.indexOf(star);
        double moved;
        if (moveBlock && star >= 1.5) {
            moved = (star + (at + 1 < scores.size() ? scores.get(at + 1) : star + 1)) / 2; // s* drops from block to flag
        } else {
            moved = (star + Math.max(at > 0 ? scores.get(at - 1) : 0, moveBlock ? 1.0 : 0)) / 2; // s* rises to block (or flag)
        }
        double flagAt = moveBlock ? 1.0 : moved;
        double blockAt = moveBlock ? moved : 1.5;
        Path planted = dir.resolve("planted.yaml");
        Path changed = dir.resolve("planted-changed.yaml");
        String original = Files.readString(planted);
        String band = moveBlock ? "- min: 1.5\n" : "- min: 1.0\n";
        assertThat(original).contains(band);
        Files.writeString(changed, original.replace(band, "- min: " + moved + "\n"));
        Path config = dir.resolve("saeguard-changed.yaml");
        Files.writeString(config, Files.readString(s.configFile).replace(planted.toString(), changed.toString()));
        Map<String, String[]> expected = new HashMap<>();
        referenceScore.forEach((key, score) -> {
            String before = action(score, 1.0, 1.5);
            String after = action(score, flagAt, blockAt);
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

    @Test
    void aStretchThatEndsBeforeTheStreamReadsNothingAndComparesNothing() throws Exception {
        // Given
        Path out = dir.resolve("before.json");

        // When the stretch is the hour before the stream was recorded
        int exit = Main.execute("replay", "--config", s.configFile.toString(), "--from", from.minusSeconds(3600).toString(), "--to",
                from.toString(), "--out", out.toString());

        // Then
        assertThat(exit).isZero();
        JsonNode report = JSON.readTree(out.toFile());
        assertThat(report.get("records").asLong()).isZero();
        assertThat(report.get("compared").asLong()).isZero();
        assertThat(report.get("agreement").isNull()).isTrue();
        assertThat(report.get("to_ms").asLong()).isEqualTo(from.toEpochMilli());
    }

    private static String action(double score, double flagAt, double blockAt) {
        return score >= blockAt ? "block" : score >= flagAt ? "flag" : "allow";
    }
}
