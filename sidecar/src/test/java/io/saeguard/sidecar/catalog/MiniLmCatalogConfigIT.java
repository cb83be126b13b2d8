package io.saeguard.sidecar.catalog;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.saeguard.sidecar.app.Sidecar;
import io.saeguard.sidecar.config.ConfigLoader;
import io.saeguard.sidecar.testing.KafkaBroker;
import io.saeguard.sidecar.testing.KafkaBrokerExtension;
import io.saeguard.sidecar.kafka.TopicAdmin;
import io.saeguard.topics.catalog.TopicCatalog;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.UUID;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The MiniLM catalog's config ({@code detectors/catalog/minilm/saeguard.yaml}) runs as shipped: its SAE, its four
 * packs (probe weights included) and the built-in prompt model load, and {@code POST /v1/check} answers a hateful and
 * a benign text with every detector's verdict, the hateful one flagged by {@code toxicity} and the benign one allowed
 * by all. Only the broker (a test broker), the HTTP port and the engine's threads are set from outside, through the
 * environment overrides a deployment would use.
 */
@ExtendWith(KafkaBrokerExtension.class)
class MiniLmCatalogConfigIT {
    static final Path CONFIG = Path.of("..", "detectors", "catalog", "minilm", "saeguard.yaml").toAbsolutePath().normalize();
    static final List<String> DETECTORS = List.of("toxicity", "refusal", "harmful-request", "computers");
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Written for this test, in the style of ToxiGen's hateful statements (not one of them). */
    static final String HATEFUL = "Women are too stupid to be trusted with any important decision.";
    static final String BENIGN = "The library opens at nine and closes at six on weekdays.";

    @Test
    void theShippedConfigAnswersEveryDetectorsVerdictAndFlagsAHatefulText(KafkaBroker kafka) throws Exception {
        // Given the shipped config on a test broker with saeguard's topics
        Properties admin = new Properties();
        admin.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrap());
        try (Admin a = Admin.create(admin)) {
            TopicAdmin.createAll(a, TopicCatalog.bundled());
        }
        Map<String, String> env = new HashMap<>(Map.of("SAEGUARD_KAFKA_BOOTSTRAP", kafka.bootstrap(), "SAEGUARD_HTTP_PORT", "0",
                "SAEGUARD_ENGINE_THREADS", "1", "SAEGUARD_KAFKA_GROUP", "catalog-" + UUID.randomUUID()));

        try (Sidecar sidecar = Sidecar.start(ConfigLoader.load(Optional.of(CONFIG), env))) {
            Awaitility.await().atMost(Duration.ofSeconds(90)).until(sidecar::ready);
            String url = "http://127.0.0.1:" + sidecar.httpPort() + "/v1/check";

            // When a hateful and a benign text are checked
            JsonNode hateful = check(url, "hateful", HATEFUL);
            JsonNode benign = check(url, "benign", BENIGN);

            // Then both answers carry the verdict of every detector of the catalog
            System.out.println("MiniLmCatalogConfigIT hateful: " + hateful.get("verdicts") + "\nbenign: " + benign.get("verdicts"));
            for (JsonNode answer : List.of(hateful, benign)) {
                assertThat(answer.get("verdicts").findValuesAsText("detector")).containsExactlyInAnyOrderElementsOf(DETECTORS);
                for (JsonNode v : answer.get("verdicts")) {
                    assertThat(v.get("score").isNumber()).as(v.toString()).isTrue();
                    assertThat(v.has("failure")).as(v.toString()).isFalse();
                }
            }
            // And the hateful text is flagged by toxicity, scoring above the benign one, which no detector flags
            assertThat(verdict(hateful, "toxicity").get("action").asText()).isEqualTo("flag");
            assertThat(verdict(hateful, "toxicity").get("score").asDouble()).isGreaterThan(verdict(benign, "toxicity").get("score").asDouble());
            assertThat(hateful.get("decision").get("action").asText()).isEqualTo("flag");
            assertThat(benign.get("verdicts").findValuesAsText("action")).containsOnly("allow");
            assertThat(benign.get("decision").get("action").asText()).isEqualTo("allow");
        }
    }

    private static JsonNode check(String url, String id, String text) throws Exception {
        String body = JSON.createObjectNode().put("request_id", id).put("text", text).toString();
        HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(url)).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        return JSON.readTree(r.body());
    }

    private static JsonNode verdict(JsonNode answer, String detector) {
        for (JsonNode v : answer.get("verdicts")) {
            if (v.get("detector").asText().equals(detector)) {
                return v;
            }
        }
        throw new AssertionError("no verdict of " + detector + " in " + answer);
    }
}
