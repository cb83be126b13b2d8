package io.saeguard.sidecar.review;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.saeguard.topics.activation.ActivationCodec;
import io.saeguard.topics.events.Action;
import io.saeguard.topics.events.Alert;
import io.saeguard.topics.events.Decision;
import io.saeguard.topics.events.EventCodec;
import io.saeguard.topics.events.PromptEvent;
import io.saeguard.topics.events.Review;
import io.saeguard.topics.events.Verdict;
import io.saeguard.topics.safetensors.DType;
import io.saeguard.topics.safetensors.SafetensorsFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.MockConsumer;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ReviewExportTest {
    private static final EventCodec CODEC = new EventCodec();
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final ReviewExport.Topics TOPICS = new ReviewExport.Topics("reviews", "alerts", "prompts", "activations");

    @TempDir
    Path dir;

    private final Map<String, List<byte[][]>> topics = new HashMap<>();

    private void put(String topic, String key, byte[] value) {
        topics.computeIfAbsent(topic, t -> new ArrayList<>()).add(new byte[][] {key.getBytes(), value});
    }

    /** A reader of one partition holding what the test put on {@code topic}. */
    private MockConsumer<String, byte[]> open(String topic) {
        List<byte[][]> records = topics.getOrDefault(topic, List.of());
        MockConsumer<String, byte[]> c = new MockConsumer<>("earliest");
        TopicPartition tp = new TopicPartition(topic, 0);
        c.updatePartitions(topic, List.of(new PartitionInfo(topic, 0, Node.noNode(), new Node[0], new Node[0])));
        c.updateBeginningOffsets(Map.of(tp, 0L));
        c.updateEndOffsets(Map.of(tp, (long) records.size()));
        c.schedulePollTask(() -> {
            for (int i = 0; i < records.size(); i++) {
                c.addRecord(new ConsumerRecord<>(topic, 0, i, new String(records.get(i)[0]), records.get(i)[1]));
            }
        });
        return c;
    }

    private void review(String requestId, Verdict verdict, long time) {
        Review r = new Review(requestId, 0, verdict, "toxicity", "alice", Optional.of("a note"), time);
        put("reviews", r.key(), CODEC.encode(r));
    }

    private void alert(String requestId, String excerpt) {
        Decision d = Decision.builder(requestId, 0, Action.FLAG, 0).detector("toxicity").score(2).build();
        put("alerts", requestId, CODEC.encode(Alert.forDecision(d).excerpt(excerpt).sae("s").build()));
    }

    private void prompt(String requestId, String text) {
        put("prompts", requestId, CODEC.encode(PromptEvent.of(requestId, text, 0)));
    }

    private void activations(String requestId, String sae, float... values) {
        put("activations", requestId, ActivationCodec.builder(requestId).sae(sae).activations(DType.F32, values.length / 3, 3, values).encode());
    }

    @Test
    void theLatestTrueAndFalsePositivesInTheWindowBecomeLabelledLinesWithTheirRequestsText() throws Exception {
        // Given r2 first marked true then false, r3 unsure, r4 before the window, r5 without a prompt event
        review("r1", Verdict.TRUE_POSITIVE, 100);
        review("r2", Verdict.TRUE_POSITIVE, 110);
        review("r3", Verdict.UNSURE, 150);
        review("r4", Verdict.TRUE_POSITIVE, 50);
        review("r2", Verdict.FALSE_POSITIVE, 200);
        review("r5", Verdict.FALSE_POSITIVE, 210);
        alert("r1", "text one");
        alert("r2", "…about cats…");
        prompt("r1", "text one");
        prompt("r2", "hello");
        prompt("r2", "a text about cats here");
        prompt("r3", "unsure text");
        Path out = dir.resolve("out/labelled.jsonl");

        // When
        ReviewExport.Summary s = new ReviewExport(this::open, TOPICS, Duration.ofSeconds(5)).export(Instant.ofEpochMilli(60),
                Instant.ofEpochMilli(1000), out, Optional.empty());

        // Then
        List<JsonNode> lines = new ArrayList<>();
        for (String l : Files.readAllLines(out)) {
            lines.add(JSON.readTree(l));
        }
        assertThat(lines).extracting(l -> l.path("alert_id").asText() + " " + l.path("label").asBoolean() + " " + l.path("text").asText())
                .containsExactly("r1/0 true text one", "r2/0 false a text about cats here");
        assertThat(lines).allSatisfy(l -> {
            assertThat(l.path("group").asText()).isEqualTo("toxicity");
            assertThat(l.has("note")).isFalse();
        });
        assertThat(s).isEqualTo(new ReviewExport.Summary(1, 1, 1, 1, List.of(), 0));
    }

    @Test
    void aRequestWithSeveralPromptEventsAndNoExcerptToTellThemApartIsSkipped() {
        assertThat(ReviewExport.textOf(List.of("a", "b"), Optional.empty())).isEmpty();
        assertThat(ReviewExport.textOf(List.of("a cat", "a cat too"), Optional.of("a cat"))).isEmpty();
        assertThat(ReviewExport.textOf(List.of("only"), Optional.empty())).contains("only");
    }

    @Test
    void withAnActivationsDirectoryEachDetectorsPositivesGetTheirRequestsActivationsAtTheAlertsSae() throws Exception {
        // Given r1 (true positive) has records at SAE s and at another SAE, r2 (false positive) none
        review("r1", Verdict.TRUE_POSITIVE, 100);
        review("r2", Verdict.FALSE_POSITIVE, 200);
        alert("r1", "one");
        alert("r2", "two");
        prompt("r1", "one");
        prompt("r2", "two");
        activations("r1", "s", 1, 2, 3, 4, 5, 6);
        activations("r1", "other", 9, 9, 9);
        activations("r1", "s", 7, 8, 9);

        // When
        ReviewExport.Summary s = new ReviewExport(this::open, TOPICS, Duration.ofSeconds(5)).export(Instant.ofEpochMilli(0),
                Instant.ofEpochMilli(1000), dir.resolve("l.jsonl"), Optional.of(dir.resolve("acts")));

        // Then
        assertThat(s.activationFiles()).containsExactly(dir.resolve("acts/toxicity.positive.safetensors"));
        assertThat(s.noActivations()).isEqualTo(1);
        SafetensorsFile f = SafetensorsFile.open(s.activationFiles().get(0));
        assertThat(f.tensor("activations").orElseThrow().shape()).containsExactly(3, 3);
        assertThat(f.tensor("activations").orElseThrow().toFloatArray()).containsExactly(1, 2, 3, 4, 5, 6, 7, 8, 9);
        assertThat(f.tensor("request").orElseThrow().toIntArray()).containsExactly(0, 0, 0);
        assertThat(f.metadata()).containsEntry("detector", "toxicity").containsEntry("label", "positive").containsEntry("alert_ids", "r1/0");
    }
}
