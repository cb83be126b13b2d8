package io.saeguard.sidecar.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.saeguard.sidecar.app.Sidecar;
import io.saeguard.sidecar.config.ConfigLoader;
import io.saeguard.sidecar.kafka.TopicAdmin;
import io.saeguard.sidecar.testing.KafkaBroker;
import io.saeguard.sidecar.testing.KafkaBrokerExtension;
import io.saeguard.topics.catalog.TopicCatalog;
import io.saeguard.topics.catalog.TopicRole;
import io.saeguard.topics.events.EventCodec;
import io.saeguard.topics.events.PromptEvent;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.UUID;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 23 end to end on a real broker, with the MiniLM catalog's 'computers' detector: prompt events raise alerts, a
 * reviewer marks them over HTTP (only a token with scope {@code review} can), a second replica shows the same alerts and
 * verdicts, {@code saeguard reviews export} writes them as labelled JSONL, and {@code saeguard eval} on that file counts
 * exactly the verdicts' labels: true_positive → positive, false_positive → negative, unsure → left out.
 */
@ExtendWith(KafkaBrokerExtension.class)
class ReviewsExportIT {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Path CATALOG = Path.of("..", "detectors", "catalog", "minilm").toAbsolutePath().normalize();
    private static final String READER = "reader-" + "0123456789abcdef".repeat(3);
    private static final String REVIEWER = "reviewer-" + "fedcba9876543210".repeat(3);
    private static final String ADMIN = "admin-" + "00112233445566778899".repeat(2);
    private static final String NOTE = "<script>alert('x')</script> not about computers";

    @TempDir
    Path dir;

    // HTTP/1.1, no h2c upgrade, and a timeout per request: a request that never got an answer once (full-suite run, second
    // replica) held the whole 60 s await instead of failing one attempt.
    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5)).build();

    @Test
    void reviewedAlertsComeBackFromExportAndEvalWithTheirVerdictsLabels(KafkaBroker kafka) throws Exception {
        // Given fresh topics and a sidecar running the 'computers' detector on prompt events, with three tokens
        Map<TopicRole, String> names = topics(kafka.bootstrap());
        Path config = config(kafka.bootstrap(), names);
        List<DemoCommand.Prompt> computers = DemoCommand.prompts().stream().filter(p -> p.label().equals("computers")).limit(8).toList();
        Map<String, String> sent = new LinkedHashMap<>();
        for (int i = 0; i < computers.size(); i++) {
            sent.put(i == 0 ? "req/with-slash" : "req-" + i, computers.get(i).text());
        }
        Map<String, String> verdicts = new LinkedHashMap<>();
        try (Sidecar sidecar = Sidecar.start(ConfigLoader.load(Optional.of(config), Map.of()))) {
            Awaitility.await().atMost(Duration.ofSeconds(120)).until(sidecar::ready);
            String base = "http://127.0.0.1:" + sidecar.httpPort();

            // When the prompt events are published, decided, and their alerts read back from the alerts topic
            produce(kafka.bootstrap(), names.get(TopicRole.PROMPTS), sent);
            String prompts = names.get(TopicRole.PROMPTS);
            Awaitility.await().atMost(Duration.ofSeconds(120)).until(() -> counter(get(base + "/metrics", READER).body(), "saeguard_events_total",
                    "topic=\"" + prompts + "\"", "outcome=\"decided\"") == sent.size());
            long raised = counter(get(base + "/metrics", READER).body(), "saeguard_alerts_total", "detector=\"computers\"");
            Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> alerts(base).size() == raised);
            List<JsonNode> alerts = alerts(base);
            assertThat(alerts).as("alerts raised by 8 texts about computers").hasSizeGreaterThanOrEqualTo(3);
            assertThat(alerts).allSatisfy(a -> assertThat(a.path("detector").asText()).isEqualTo("computers"));

            // Then only a token with scope review can mark one: none 401, read 403, admin 403, review 200
            JsonNode first = alerts.get(0);
            String firstPath = "/v1/alerts/" + encode(first.path("request_id").asText()) + "/" + first.path("seq").asLong() + "/review";
            String body = JSON.createObjectNode().put("verdict", "false_positive").put("note", NOTE).toString();
            Map<String, Integer> expected = new LinkedHashMap<>();
            expected.put("", 401);
            expected.put(READER, 403);
            expected.put(ADMIN, 403);
            expected.put(REVIEWER, 200);
            Map<String, Integer> got = new LinkedHashMap<>();
            for (String token : expected.keySet()) {
                got.put(token, post(base + firstPath, token, body).statusCode());
            }
            assertThat(got).isEqualTo(expected);
            // And a malformed verdict or seq is a 400, an alert this replica never saw a 404
            assertThat(post(base + firstPath, REVIEWER, "{\"verdict\": \"maybe\"}").statusCode()).isEqualTo(400);
            assertThat(post(base + "/v1/alerts/req-1/x/review", REVIEWER, body).statusCode()).isEqualTo(400);
            assertThat(post(base + "/v1/alerts/never-sent/0/review", REVIEWER, body).statusCode()).isEqualTo(404);
            // And naming a detector that did not raise the alert is a 404
            assertThat(post(base + firstPath, REVIEWER, "{\"verdict\": \"unsure\", \"detector\": \"toxicity\"}").statusCode()).isEqualTo(404);

            // When the reviewer marks every alert: the first false_positive, the second unsure, then true, false, true...
            for (int i = 0; i < alerts.size(); i++) {
                JsonNode a = alerts.get(i);
                String verdict = i == 0 ? "false_positive" : i == 1 ? "unsure" : i % 2 == 0 ? "true_positive" : "false_positive";
                String path = "/v1/alerts/" + encode(a.path("request_id").asText()) + "/" + a.path("seq").asLong() + "/review";
                HttpResponse<String> r = post(base + path, REVIEWER, JSON.createObjectNode().put("verdict", verdict)
                        .put("note", i == 0 ? NOTE : "").put("detector", "computers").toString());
                assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
                JsonNode answer = JSON.readTree(r.body());
                assertThat(answer.path("reviewer").asText()).isEqualTo("reviewer");
                assertThat(answer.path("detector").asText()).isEqualTo("computers");
                verdicts.put(a.path("request_id").asText() + "/" + a.path("seq").asLong(), verdict);
            }

            // Then the alert whose request id holds a "/" was reviewed through its %2F-encoded path
            assertThat(verdicts).containsKey("req/with-slash/0");
            // And the reviews list holds the latest verdicts, the note verbatim as JSON text
            JsonNode reviews = JSON.readTree(get(base + "/v1/reviews", READER).body()).path("reviews");
            Map<String, String> listed = new LinkedHashMap<>();
            reviews.forEach(r -> listed.put(r.path("alert_id").asText(), r.path("verdict").asText()));
            assertThat(listed).isEqualTo(verdicts);
            assertThat(reviews.get(0).path("note").asText()).isEqualTo(NOTE);
            // And the counter counted each alert's verdict once on this replica (the first changed nothing: it was repeated)
            String metrics = get(base + "/metrics", READER).body();
            Map<String, Long> byVerdict = verdicts.values().stream().collect(Collectors.groupingBy(v -> v, Collectors.counting()));
            byVerdict.forEach((v, n) -> assertThat(metrics).contains("saeguard_review_verdicts_total{detector=\"computers\",verdict=\"" + v
                    + "\"} " + n + ".0"));

            // And a second replica, started now, shows the same alerts with the same verdicts
            try (Sidecar second = Sidecar.start(ConfigLoader.load(Optional.of(config), Map.of("SAEGUARD_KAFKA_GROUP", "second-" + UUID.randomUUID())))) {
                String other = "http://127.0.0.1:" + second.httpPort();
                Awaitility.await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> {
                    Map<String, String> shown = new LinkedHashMap<>();
                    for (JsonNode a : alerts(other)) {
                        shown.put(a.path("request_id").asText() + "/" + a.path("seq").asLong(), a.path("review").path("verdict").asText());
                    }
                    assertThat(shown).isEqualTo(verdicts);
                });
            }
        }

        // When the reviews are exported and evaluated
        Path labelled = dir.resolve("labelled.jsonl");
        int exported = Main.execute("reviews", "export", "--bootstrap", kafka.bootstrap(), "--from", "2020-01-01", "--out", labelled.toString(),
                "--topic", "reviews=" + names.get(TopicRole.REVIEWS), "--topic", "alerts=" + names.get(TopicRole.ALERTS),
                "--topic", "prompts=" + names.get(TopicRole.PROMPTS));
        Path report = dir.resolve("report.json");
        int evaluated = Main.execute("eval", "--config", config.toString(), "--data", labelled.toString(), "--out", report.toString());

        // Then every true or false positive is one line with its request's text and its verdict's label, unsure left out
        assertThat(exported).isZero();
        List<JsonNode> lines = new ArrayList<>();
        for (String line : Files.readAllLines(labelled)) {
            lines.add(JSON.readTree(line));
        }
        JsonNode review0 = lines.get(0);
        assertThat(review0.has("note")).isFalse();
        Map<String, Boolean> labels = new LinkedHashMap<>();
        for (JsonNode l : lines) {
            String requestId = l.path("alert_id").asText().substring(0, l.path("alert_id").asText().lastIndexOf('/'));
            assertThat(l.path("text").asText()).isEqualTo(sent.get(requestId));
            assertThat(l.path("group").asText()).isEqualTo("computers");
            labels.put(l.path("alert_id").asText(), l.path("label").asBoolean());
        }
        Map<String, Boolean> wanted = new LinkedHashMap<>();
        verdicts.forEach((id, v) -> {
            if (!v.equals("unsure")) {
                wanted.put(id, v.equals("true_positive"));
            }
        });
        assertThat(labels).isEqualTo(wanted);
        // And eval reads the file and counts the same positives and negatives for the detector
        assertThat(evaluated).isZero();
        JsonNode measured = JSON.readTree(report.toFile()).path("detectors").path("computers");
        assertThat(measured.path("n_positive").asLong()).isEqualTo(wanted.values().stream().filter(b -> b).count());
        assertThat(measured.path("n_negative").asLong()).isEqualTo(wanted.values().stream().filter(b -> !b).count());
        System.out.println("ReviewsExportIT: verdicts " + verdicts + "; " + lines.size() + " labelled lines, eval " + measured);
    }

    private static Map<TopicRole, String> topics(String bootstrap) throws Exception {
        String prefix = "r" + UUID.randomUUID().toString().substring(0, 8) + ".";
        Map<TopicRole, String> names = new EnumMap<>(TopicRole.class);
        for (TopicRole r : TopicRole.values()) {
            names.put(r, prefix + "saeguard." + r.key());
        }
        Properties admin = new Properties();
        admin.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin a = Admin.create(admin)) {
            TopicAdmin.createAll(a, TopicCatalog.bundled().withNames(names));
        }
        return names;
    }

    private Path config(String bootstrap, Map<TopicRole, String> names) throws Exception {
        Files.writeString(dir.resolve("reader.token"), READER);
        Files.writeString(dir.resolve("reviewer.token"), REVIEWER);
        Files.writeString(dir.resolve("admin.token"), ADMIN);
        String topics = names.entrySet().stream().map(e -> "  " + e.getKey().key() + ": " + e.getValue()).collect(Collectors.joining("\n"));
        return Files.writeString(dir.resolve("saeguard.yaml"), """
                kafka:
                  bootstrap: %s
                  group: reviews-%s
                topics:
                %s
                saes:
                  - id: minilm-catalog
                    path: %s
                    model: all-minilm-l6-v2
                    hook: blocks.5.hook_resid_post
                detectors:
                  - %s
                prompts:
                  model: builtin:all-minilm-l6-v2
                  max_tokens: 64
                engine:
                  threads: 1
                http:
                  host: 127.0.0.1
                  port: 0
                  auth:
                    tokens:
                      - {name: dashboards, token_file: reader.token, scopes: [read]}
                      - {name: reviewer, token_file: reviewer.token, scopes: [review]}
                      - {name: ops, token_file: admin.token, scopes: [admin]}
                """.formatted(bootstrap, UUID.randomUUID(), topics, CATALOG.resolve("sae"), CATALOG.resolve("computers.yaml")));
    }

    private static void produce(String bootstrap, String topic, Map<String, String> texts) throws Exception {
        Map<String, Object> p = new HashMap<>();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        EventCodec codec = new EventCodec();
        try (KafkaProducer<String, byte[]> producer = new KafkaProducer<>(p, new StringSerializer(), new ByteArraySerializer())) {
            for (Map.Entry<String, String> e : texts.entrySet()) {
                producer.send(new ProducerRecord<>(topic, e.getKey(), codec.encode(PromptEvent.of(e.getKey(), e.getValue(),
                        Instant.now().toEpochMilli())))).get();
            }
        }
    }

    /** The value of the series of {@code name} whose labels include every one of {@code labels}; 0 when there is none. */
    private static long counter(String metrics, String name, String... labels) {
        return metrics.lines().filter(l -> l.startsWith(name + "{") && java.util.Arrays.stream(labels).allMatch(l::contains))
                .mapToLong(l -> (long) Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1))).sum();
    }

    private List<JsonNode> alerts(String base) throws Exception {
        List<JsonNode> list = new ArrayList<>();
        JSON.readTree(get(base + "/v1/alerts?limit=500", READER).body()).path("alerts").forEach(list::add);
        return list;
    }

    private static String encode(String requestId) {
        return java.net.URLEncoder.encode(requestId, java.nio.charset.StandardCharsets.UTF_8);
    }

    private HttpResponse<String> get(String url, String token) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(10)).header("Authorization", "Bearer " + token).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> post(String url, String token, String body) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(10)).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body));
        if (!token.isEmpty()) {
            b.header("Authorization", "Bearer " + token);
        }
        return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }
}
