package io.saeguard.sidecar.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.saeguard.sae.PythonSaeFixtures;
import io.saeguard.sae.TestSeed;
import io.saeguard.sidecar.app.Sidecar;
import io.saeguard.sidecar.review.RequestDecisions;
import io.saeguard.sidecar.testing.KafkaBroker;
import io.saeguard.sidecar.testing.KafkaBrokerExtension;
import io.saeguard.topics.catalog.TopicCatalog;
import io.saeguard.topics.catalog.TopicRole;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code GET /v1/requests/{request_id}/decisions} against a real broker (issue 23, item 1). Invariant: a request's answer
 * is exactly the request's decisions on the decisions topic (allows and repeated flags, which raise no alert, included),
 * in seq order, whether they are on the partition its key hashes to or on the reply partition its records named.
 */
@ExtendWith(KafkaBrokerExtension.class)
class RequestDecisionsIT {
    private static final long SEED = TestSeed.draw("RequestDecisionsIT");
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient HTTP = HttpClient.newHttpClient();

    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        PythonSaeFixtures.assumeAvailable();
    }

    @Test
    void aRequestsAllowAndFlagDecisionsAreAnsweredInSeqOrderFromItsKeysOrItsReplyPartition(KafkaBroker kafka) throws Exception {
        // Given a sidecar, and two requests of four records each: quiet, firing, firing, quiet (allow, flag, flag again, allow);
        // "mixed" on its key's partition, "replied" naming a reply partition other than its key's
        Scenario s = Scenario.create(dir, kafka.bootstrap(), SEED, "");
        int partitions = TopicCatalog.bundled().get(TopicRole.DECISIONS).partitions();
        int reply = (RequestDecisions.partitionOf("replied", partitions) + 1) % partitions;
        int quiet = record(s, "allow");
        int firing = record(s, "flag", "block");
        String fired = s.expectedAction(firing, 4);
        int[] firsts = {quiet, firing, firing, quiet};
        try (Sidecar sidecar = Sidecar.start(s.config()); KafkaProducer<String, byte[]> producer = s.producer()) {
            String activations = s.topic(TopicRole.ACTIVATIONS);
            for (int c = 0; c < firsts.length; c++) {
                long position = (long) c * Scenario.TOKENS_PER_RECORD;
                boolean last = c == firsts.length - 1;
                producer.send(new ProducerRecord<>(activations, "mixed", s.record("mixed", firsts[c], position, last)));
                producer.send(new ProducerRecord<>(activations, "replied", s.record("replied", firsts[c], position, last, reply)));
            }
            producer.flush();
            Awaitility.await().atMost(Duration.ofSeconds(90)).pollInterval(Duration.ofMillis(500))
                    .until(() -> s.readToEnd(TopicRole.DECISIONS).size() >= 2 * firsts.length);
            Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> get(sidecar, "/v1/alerts?limit=500").body().contains("\"replied\""));

            for (String request : List.of("mixed", "replied")) {
                // When the request's decisions are asked for
                HttpResponse<String> answer = get(sidecar, "/v1/requests/" + request + "/decisions");

                // Then they are the topic's decisions of that request, in seq order, allows and flags both, and complete
                assertThat(answer.statusCode()).as(answer.body()).isEqualTo(200);
                JsonNode body = JSON.readTree(answer.body());
                List<JsonNode> expected = onTopic(s, request);
                assertThat(expected).hasSize(firsts.length);
                assertThat(body.path("request_id").asText()).isEqualTo(request);
                assertThat(list(body.path("decisions"))).as(request).containsExactlyElementsOf(expected);
                assertThat(list(body.path("decisions"))).extracting(d -> d.path("action").asText()).as(request)
                        .contains("allow", fired);
                assertThat(body.path("complete").asBoolean()).as(request).isTrue();
                assertThat(body.path("scanned").asLong()).as(request).isGreaterThanOrEqualTo(firsts.length);
                // And they are more than the request's alerts: an allow and a repeated flag raise none
                long alerts = list(JSON.readTree(get(sidecar, "/v1/alerts?limit=500").body()).path("alerts")).stream()
                        .filter(a -> a.path("request_id").asText().equals(request)).count();
                assertThat(alerts).as(request).isLessThan(firsts.length);
            }

            // And an unknown request is an empty answer, a malformed id a 400
            JsonNode none = JSON.readTree(get(sidecar, "/v1/requests/never-sent/decisions").body());
            assertThat(none.path("decisions")).isEmpty();
            HttpResponse<String> bad = get(sidecar, "/v1/requests/bad%01id/decisions");
            assertThat(bad.statusCode()).as(bad.body()).isEqualTo(400);
            assertThat(bad.body()).contains("control character");
        }
    }

    /** The first record start whose reference codes give the first of {@code actions} that any does, past position 0. */
    private static int record(Scenario s, String... actions) {
        for (String action : actions) {
            for (int first = 0; first + Scenario.TOKENS_PER_RECORD <= s.tokens; first += Scenario.TOKENS_PER_RECORD) {
                // Past position 0 every token counts (position 0 is BOS), so the action is the same at 0, 4, 8 and 12 for a quiet record.
                if (s.expectedAction(first, 4).equals(action)) {
                    return first;
                }
            }
        }
        throw new AssertionError("the scenario (seed " + SEED + ") has no record deciding " + String.join(" or ", actions));
    }

    /** The request's decisions on the decisions topic, every partition, in seq order. */
    private static List<JsonNode> onTopic(Scenario s, String request) throws Exception {
        List<JsonNode> out = new ArrayList<>();
        for (ConsumerRecord<String, byte[]> r : s.readToEnd(TopicRole.DECISIONS)) {
            if (request.equals(r.key())) {
                out.add(JSON.readTree(new String(r.value(), StandardCharsets.UTF_8)));
            }
        }
        out.sort(Comparator.comparingLong(d -> d.path("seq").asLong()));
        return out;
    }

    private static List<JsonNode> list(JsonNode array) {
        List<JsonNode> out = new ArrayList<>();
        array.forEach(out::add);
        return out;
    }

    private static HttpResponse<String> get(Sidecar sidecar, String path) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + sidecar.httpPort() + path)).build(),
                HttpResponse.BodyHandlers.ofString());
    }
}
