package io.saeguard.sidecar.pipeline;

import io.saeguard.sidecar.app.Sidecar;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.saeguard.sae.PythonSaeFixtures;
import io.saeguard.sae.testing.ExternalTools;
import io.saeguard.sidecar.testing.KafkaBroker;
import io.saeguard.sidecar.testing.KafkaBrokerExtension;
import io.saeguard.sidecar.testing.Kcat;
import io.saeguard.topics.catalog.TopicRole;
import io.saeguard.topics.events.Alert;
import io.saeguard.topics.events.Decision;
import io.saeguard.topics.events.EventCodec;
import io.saeguard.topics.safetensors.SafetensorsWriter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.header.Header;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/** The sidecar pipeline against a real broker: Kafka in, SAE codes through a detector, decisions and alerts out. */
@ExtendWith(KafkaBrokerExtension.class)
class PipelineIT {
    private static final long SEED = new Random().nextLong() & 0x7fffffffL;
    private static final EventCodec CODEC = new EventCodec();

    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        System.out.println("PipelineIT seed=" + SEED);
        PythonSaeFixtures.assumeAvailable();
        ExternalTools.assumeInstalled(Kcat.installed(), "kcat", "kcat");
    }

    @Test
    void recordsProducedByKcatGetOneDecisionEachMatchingTheRuleOnPyTorchCodes(KafkaBroker kafka) throws Exception {
        // Given a sidecar and 12 records (4 requests x 3 chunks) written as files and produced by kcat
        Scenario s = Scenario.create(dir, kafka.bootstrap(), SEED, "");
        Kcat kcat = new Kcat(kafka.bootstrap());
        Map<String, Integer> firstToken = new HashMap<>();
        try (Sidecar sidecar = Sidecar.start(s.config())) {
            for (int r = 0; r < 4; r++) {
                for (int c = 0; c < 3; c++) {
                    String request = "req-" + r;
                    int first = (r * 3 + c) * Scenario.TOKENS_PER_RECORD;
                    firstToken.put(request + "@" + c * Scenario.TOKENS_PER_RECORD, first);
                    kcat.produce(s.topic(TopicRole.ACTIVATIONS), request, s.record(request, first, c * Scenario.TOKENS_PER_RECORD, c == 2), dir);
                }
            }

            // When kcat reads the decisions
            List<Decision> decisions = new ArrayList<>();
            long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
            while (decisions.size() < 12 && System.nanoTime() < deadline) {
                decisions.clear();
                for (String line : readLines(kcat, s.topic(TopicRole.DECISIONS), 12)) {
                    decisions.add(CODEC.decodeDecision(line.getBytes(StandardCharsets.UTF_8)));
                }
            }

            // Then there is exactly one per record, and action and score are the rule's on the reference codes
            assertThat(decisions).hasSize(12);
            int fired = 0;
            for (Decision d : decisions) {
                Integer first = firstToken.get(d.requestId() + "@" + d.position());
                assertThat(first).as("decision for an input that exists: " + d.requestId() + "@" + d.position()).isNotNull();
                String expected = s.expectedAction(first, d.position());
                assertThat(d.action().wireName()).as("action of " + d.requestId() + "@" + d.position()).isEqualTo(expected);
                if (!expected.equals("allow")) {
                    fired++;
                    assertThat(d.detector()).contains(Scenario.DETECTOR);
                    assertThat(d.score().orElseThrow()).isCloseTo(s.expectedScore(first, d.position()), org.assertj.core.data.Offset.offset(1e-4));
                    assertThat(d.features()).anySatisfy(f -> assertThat(f.id()).isEqualTo(s.feature));
                }
                assertThat(d.latencyMs()).isPresent();
            }
            assertThat(fired).as("the scenario must exercise firing").isPositive();

            // And an alert where a request first fires and where it escalates (not on every firing chunk)
            java.util.Set<String> firing = new java.util.HashSet<>();
            Map<String, Integer> alertedLevel = new HashMap<>();
            List<Decision> ordered = new ArrayList<>(decisions);
            ordered.sort(java.util.Comparator.comparing(Decision::requestId).thenComparingLong(Decision::position));
            for (Decision d : ordered) {
                int level = d.action().ordinal();
                if (d.action() != io.saeguard.topics.events.Action.ALLOW && level > alertedLevel.getOrDefault(d.requestId(), 0)) {
                    firing.add(d.requestId() + "@" + d.position());
                    alertedLevel.put(d.requestId(), level);
                }
            }
            fired = firing.size();
            List<String> alertLines = List.of();
            deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (alertLines.size() < fired && System.nanoTime() < deadline) {
                alertLines = readLines(kcat, s.topic(TopicRole.ALERTS), fired);
            }
            java.util.Set<String> alerted = new java.util.HashSet<>();
            for (String line : alertLines) {
                Alert a = CODEC.decodeAlert(line.getBytes(StandardCharsets.UTF_8));
                assertThat(a.detector()).isEqualTo(Scenario.DETECTOR);
                assertThat(a.features()).anySatisfy(f -> assertThat(f.label()).contains("planted concept"));
                alerted.add(a.requestId() + "@" + a.decision().position());
            }
            assertThat(alerted).isEqualTo(firing);

            // And the watched feature's firing count is exported (it fired on the tokens the reference says)
            String metrics = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + sidecar.httpPort()
                    + "/metrics")).build(), HttpResponse.BodyHandlers.ofString()).body();
            long reference = 0;
            for (int t = 0; t < 48; t++) {
                if (s.features[t * s.dSae + s.feature] != 0) {
                    reference++;
                }
            }
            assertThat(metrics).contains("saeguard_feature_fires_total{feature=\"" + s.feature + "\",sae=\"test-sae\"} " + reference + ".0");
            assertThat(metrics).contains("saeguard_feature_fire_rate{feature=\"" + s.feature + "\",sae=\"test-sae\"}");
            assertThat(metrics).contains("saeguard_build_info{").contains("saes=\"test-sae\"");
            // lag is refreshed once a second, from end offsets the fetcher learns: allow it a few refreshes
            Awaitility.await().atMost(Duration.ofSeconds(20)).until(() -> HttpClient.newHttpClient().send(
                    HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + sidecar.httpPort() + "/metrics")).build(),
                    HttpResponse.BodyHandlers.ofString()).body().contains("saeguard_consumer_lag_records{partition="));
            assertThat(sidecar.ready()).isTrue();
        }
    }

    @Test
    void poisonPillsGoToTheDeadLetterTopicWithTheirHeadersReasonsAndOriginAndConsumptionContinues(KafkaBroker kafka) throws Exception {
        // Given a sidecar, and bad records of every kind between good ones, each with headers of its own
        Scenario s = Scenario.create(dir, kafka.bootstrap(), SEED, "batching:\n  max_record_tokens: 16\n");
        Map<String, Expected> bad = new LinkedHashMap<>();
        for (Poison p : Poison.values()) {
            String key = p.name().toLowerCase(Locale.ROOT).replace('_', '-');
            bad.put(key, new Expected(p.record(s, key, 0), p.stage, p.reason, p.error));
        }
        bad.put("oversize", new Expected(new SafetensorsWriter().metadata("request_id", "oversize").metadata("sae", Scenario.SAE_ID)
                .addF32("activations", new long[] {17, 64}, new float[17 * 64]).toBytes(), "validate", "oversize",
                IllegalArgumentException.class));
        Map<String, String> message = Map.of("undecodable", "points past the end of the record", "wrong-d-in", "d_in 63",
                "unknown-sae", "not-loaded", "nan", "token 1 (position 1) has a non-finite value (NaN) at dimension 7",
                "infinity", "token 2 (position 2) has a non-finite value (Infinity) at dimension 5", "oversize", "17 tokens");
        Map<String, List<Header>> originalHeaders = new HashMap<>();
        Map<String, RecordMetadata> written = new HashMap<>();
        try (Sidecar sidecar = Sidecar.start(s.config()); KafkaProducer<String, byte[]> producer = s.producer()) {
            Map<String, Double> deadLettersBefore = deadLetterCounts(sidecar);

            // When they are produced
            producer.send(new ProducerRecord<>(s.topic(TopicRole.ACTIVATIONS), "good-0", s.record("good-0", 0, 0, true))).get(30, TimeUnit.SECONDS);
            for (Map.Entry<String, Expected> b : bad.entrySet()) {
                ProducerRecord<String, byte[]> r = new ProducerRecord<>(s.topic(TopicRole.ACTIVATIONS), b.getKey(), b.getValue().value());
                r.headers().add("traceparent", ("00-" + b.getKey() + "-01").getBytes(StandardCharsets.UTF_8));
                r.headers().add("hop", new byte[] {0, (byte) 0xff, 1});
                r.headers().add("hop", "second".getBytes(StandardCharsets.UTF_8));
                r.headers().add("empty", new byte[0]);
                originalHeaders.put(b.getKey(), List.of(r.headers().toArray()));
                written.put(b.getKey(), producer.send(r).get(30, TimeUnit.SECONDS));
            }
            producer.send(new ProducerRecord<>(s.topic(TopicRole.ACTIVATIONS), "good-1", s.record("good-1", 4, 0, true))).get(30, TimeUnit.SECONDS);
            List<ConsumerRecord<String, byte[]>> dead = s.read(TopicRole.DEADLETTER, bad.size(), Duration.ofSeconds(90));
            List<ConsumerRecord<String, byte[]>> decisions = s.read(TopicRole.DECISIONS, 2, Duration.ofSeconds(60));

            // Then each bad record is dead-lettered once, byte for byte, with its own headers unchanged and in order,
            // then the saeguard.error.* headers: where it failed, why, and where it came from
            assertThat(dead).extracting(ConsumerRecord::key).containsExactlyInAnyOrderElementsOf(bad.keySet());
            for (ConsumerRecord<String, byte[]> d : dead) {
                Expected e = bad.get(d.key());
                assertThat(d.value()).as("value of " + d.key()).isEqualTo(e.value());
                List<Header> own = new ArrayList<>();
                d.headers().forEach(h -> {
                    if (!h.key().startsWith("saeguard.error.")) {
                        own.add(h);
                    }
                });
                assertThat(own).as("original headers of " + d.key()).containsExactlyElementsOf(originalHeaders.get(d.key()));
                for (String name : List.of("stage", "reason", "class", "message", "topic", "partition", "offset", "ts")) {
                    assertThat(d.headers().headers("saeguard.error." + name)).as("saeguard.error." + name + " of " + d.key()).hasSize(1);
                }
                assertThat(header(d, "saeguard.error.stage")).as("stage of " + d.key()).isEqualTo(e.stage());
                assertThat(header(d, "saeguard.error.reason")).as("reason of " + d.key()).isEqualTo(e.reason());
                assertThat(header(d, "saeguard.error.class")).as("class of " + d.key()).isEqualTo(e.error().getName());
                assertThat(header(d, "saeguard.error.message")).as("message of " + d.key()).contains(message.get(d.key()));
                assertThat(header(d, "saeguard.error.topic")).isEqualTo(s.topic(TopicRole.ACTIVATIONS));
                assertThat(header(d, "saeguard.error.partition")).as("partition of " + d.key())
                        .isEqualTo(Integer.toString(written.get(d.key()).partition()));
                assertThat(header(d, "saeguard.error.offset")).as("offset of " + d.key()).isEqualTo(Long.toString(written.get(d.key()).offset()));
                assertThat(header(d, "saeguard.error.ts")).matches("\\d+");
            }
            // And the good records on either side were decided
            assertThat(decisions).extracting(ConsumerRecord::key).containsExactlyInAnyOrder("good-0", "good-1");
            assertThat(sidecar.ready()).isTrue();

            // And saeguard_deadletters_total{stage,reason} rose by exactly the bad records of each stage and reason
            Map<String, Double> expectedCounts = new HashMap<>();
            bad.values().forEach(e -> expectedCounts.merge(e.stage() + "/" + e.reason(), 1.0, Double::sum));
            Awaitility.await().atMost(Duration.ofSeconds(30)).until(() ->
                    increase(deadLettersBefore, deadLetterCounts(sidecar)).values().stream().mapToDouble(Double::doubleValue).sum() >= bad.size());
            assertThat(increase(deadLettersBefore, deadLetterCounts(sidecar))).isEqualTo(expectedCounts);
        }
    }

    /** What a bad record's dead letter must carry. */
    private record Expected(byte[] value, String stage, String reason, Class<? extends Exception> error) {
    }

    /** {@code saeguard_deadletters_total} from the sidecar's /metrics, by "stage/reason". */
    private static Map<String, Double> deadLetterCounts(Sidecar sidecar) throws Exception {
        String metrics = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + sidecar.httpPort()
                + "/metrics")).build(), HttpResponse.BodyHandlers.ofString()).body();
        Map<String, Double> counts = new HashMap<>();
        Pattern label = Pattern.compile("(\\w+)=\"([^\"]*)\"");
        for (String line : metrics.lines().filter(l -> l.startsWith("saeguard_deadletters_total{")).toList()) {
            Map<String, String> labels = new HashMap<>();
            Matcher m = label.matcher(line.substring(0, line.indexOf('}')));
            while (m.find()) {
                labels.put(m.group(1), m.group(2));
            }
            counts.put(labels.get("stage") + "/" + labels.get("reason"), Double.parseDouble(line.substring(line.indexOf("} ") + 2).trim()));
        }
        return counts;
    }

    /** The series that rose from {@code before} to {@code after}, by how much. */
    private static Map<String, Double> increase(Map<String, Double> before, Map<String, Double> after) {
        Map<String, Double> rose = new HashMap<>();
        after.forEach((k, v) -> {
            double d = v - before.getOrDefault(k, 0.0);
            if (d != 0) {
                rose.put(k, d);
            }
        });
        return rose;
    }

    @Test
    void httpCheckAndEncodeAnswerSynchronouslyAndRejectBadInputWith400(KafkaBroker kafka) throws Exception {
        Scenario s = Scenario.create(dir, kafka.bootstrap(), SEED, "");
        try (Sidecar sidecar = Sidecar.start(s.config())) {
            HttpClient http = HttpClient.newHttpClient();
            String base = "http://127.0.0.1:" + sidecar.httpPort();
            int firing = -1;
            for (int first = 0; first + Scenario.TOKENS_PER_RECORD <= s.tokens && firing < 0; first += Scenario.TOKENS_PER_RECORD) {
                if (s.expectedScore(first, 4) >= 1.0) {
                    firing = first;
                }
            }
            assumeTrue(firing >= 0, "no firing chunk in this seed");

            // When a firing record is checked synchronously
            HttpResponse<String> check = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/check"))
                    .header("Content-Type", "application/octet-stream")
                    .POST(HttpRequest.BodyPublishers.ofByteArray(s.record("sync-1", firing, 4, true))).build(), HttpResponse.BodyHandlers.ofString());

            // Then the decision is the rule's
            assertThat(check.statusCode()).as(check.body()).isEqualTo(200);
            assertThat(check.body()).contains("\"action\":\"" + s.expectedAction(firing, 4) + "\"").contains("\"request_id\":\"sync-1\"");

            // When /v1/encode gets JSON activations, Then it returns the active features
            StringBuilder row = new StringBuilder();
            for (int t = firing; t < firing + Scenario.TOKENS_PER_RECORD; t++) {
                row.append(t == firing ? "[" : ",[");
                for (int j = 0; j < s.dIn; j++) {
                    row.append(j == 0 ? "" : ",").append(s.inputs[t * s.dIn + j]);
                }
                row.append(']');
            }
            HttpResponse<String> encode = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/encode"))
                    .header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString("{\"sae\":\"" + Scenario.SAE_ID + "\",\"activations\":[" + row + "]}")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(encode.statusCode()).as(encode.body()).isEqualTo(200);
            assertThat(encode.body()).contains("\"id\":" + s.feature);

            // And bad input gets a 400 with a JSON error naming the problem; the service stays up
            for (String[] bad : new String[][] {{"application/json", "{\"sae\":\"nope\",\"activations\":[[1]]}", "unknown SAE id 'nope'"},
                    {"application/json", "{\"activations\":[]}", "'activations' must be"},
                    {"application/octet-stream", "xx", "safetensors"},
                    {"application/json", "{\"sae\":\"" + Scenario.SAE_ID + "\",\"activations\":[[1,2,3]]}", "d_in 3"}}) {
                HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/check")).header("Content-Type", bad[0])
                        .POST(HttpRequest.BodyPublishers.ofString(bad[1])).build(), HttpResponse.BodyHandlers.ofString());
                assertThat(r.statusCode()).as(bad[1]).isEqualTo(400);
                assertThat(r.body()).startsWith("{\"error\":").contains(bad[2]);
            }
            HttpResponse<String> live = http.send(HttpRequest.newBuilder(URI.create(base + "/health/live")).build(), HttpResponse.BodyHandlers.ofString());
            assertThat(live.statusCode()).isEqualTo(200);
            HttpResponse<String> metrics = http.send(HttpRequest.newBuilder(URI.create(base + "/metrics")).build(), HttpResponse.BodyHandlers.ofString());
            assertThat(metrics.body()).contains("saeguard_inflight_tokens").contains("saeguard_paused_partitions");
        }
    }

    @Test
    void detectorsAreReplacedAtRunTimeOverHttpAndBadDefinitionsAreRefusedKeepingTheOldOne(KafkaBroker kafka) throws Exception {
        Scenario s = Scenario.create(dir, kafka.bootstrap(), SEED, "");
        try (Sidecar sidecar = Sidecar.start(s.config())) {
            HttpClient http = HttpClient.newHttpClient();
            String base = "http://127.0.0.1:" + sidecar.httpPort();
            String yaml = java.nio.file.Files.readString(dir.resolve("planted.yaml"));

            // When the detector is replaced by one with a huge threshold, Then a firing record no longer fires
            int firing = -1;
            for (int first = 0; first + Scenario.TOKENS_PER_RECORD <= s.tokens && firing < 0; first += Scenario.TOKENS_PER_RECORD) {
                if (s.expectedScore(first, 4) >= 1.0) {
                    firing = first;
                }
            }
            assumeTrue(firing >= 0, "no firing chunk in this seed");
            String raised = yaml.replaceFirst("threshold: .*", "threshold: 1.0e9");
            HttpResponse<String> put = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/detectors/" + Scenario.DETECTOR))
                    .PUT(HttpRequest.BodyPublishers.ofString(raised)).build(), HttpResponse.BodyHandlers.ofString());
            assertThat(put.statusCode()).as(put.body()).isEqualTo(200);
            assertThat(put.body()).contains("\"replaced\"");
            HttpResponse<String> check = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/check"))
                    .header("Content-Type", "application/octet-stream")
                    .POST(HttpRequest.BodyPublishers.ofByteArray(s.record("after-put", firing, 4, true))).build(), HttpResponse.BodyHandlers.ofString());
            assertThat(check.body()).contains("\"action\":\"allow\"");

            // And invalid definitions get 400 naming the problem, with the running version unchanged
            for (String[] bad : new String[][] {{yaml.replace("kind: features", "kind: nonsense"), "nonsense"},
                    {yaml.replace("sae: " + Scenario.SAE_ID, "sae: not-loaded"), "unknown SAE id 'not-loaded'"},
                    {yaml.replace("id: " + Scenario.DETECTOR, "id: other"), "differs from the path"}}) {
                HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/detectors/" + Scenario.DETECTOR))
                        .PUT(HttpRequest.BodyPublishers.ofString(bad[0])).build(), HttpResponse.BodyHandlers.ofString());
                assertThat(r.statusCode()).as(r.body()).isEqualTo(400);
                assertThat(r.body()).contains(bad[1]);
            }
            HttpResponse<String> current = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/detectors/" + Scenario.DETECTOR)).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(current.statusCode()).isEqualTo(200);
            assertThat(current.body()).contains("kind: features").doesNotContain("threshold: " + s.threshold);
            HttpResponse<String> unknown = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/detectors/nope")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(unknown.statusCode()).isEqualTo(404);
            HttpResponse<String> list = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/detectors")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(list.body()).contains("\"id\":\"" + Scenario.DETECTOR + "\"");
        }
    }

    @Test
    void anEditedDetectorFileIsReloadedAndAnInvalidEditKeepsTheRunningVersion(KafkaBroker kafka) throws Exception {
        Scenario s = Scenario.create(dir, kafka.bootstrap(), SEED, "");
        try (Sidecar sidecar = Sidecar.start(s.config())) {
            HttpClient http = HttpClient.newHttpClient();
            URI detector = URI.create("http://127.0.0.1:" + sidecar.httpPort() + "/v1/detectors/" + Scenario.DETECTOR);
            Path file = dir.resolve("planted.yaml");
            String original = java.nio.file.Files.readString(file);

            // When the file is edited to a new threshold, Then the running detector follows
            java.nio.file.Files.writeString(file, original.replaceFirst("threshold: .*", "threshold: 123.5"));
            Awaitility.await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(200)).until(() ->
                    http.send(HttpRequest.newBuilder(detector).build(), HttpResponse.BodyHandlers.ofString()).body().contains("123.5"));

            // When the file is broken, Then the running version stays
            Thread.sleep(1100); // a distinct modification time
            java.nio.file.Files.writeString(file, original.replace("kind: features", "kind: nonsense"));
            Thread.sleep(3000);
            String current = http.send(HttpRequest.newBuilder(detector).build(), HttpResponse.BodyHandlers.ofString()).body();
            assertThat(current).contains("123.5").contains("kind: features");
        }
    }

    @Test
    void aFailedDeadLetterWriteStopsCommitsAndMakesTheSidecarUnready(KafkaBroker kafka) throws Exception {
        // Given a sidecar whose dead-letter topic does not exist (the broker does not auto-create topics)
        Scenario s = Scenario.create(dir, kafka.bootstrap(), SEED, "");
        String config = java.nio.file.Files.readString(s.configFile)
                .replace("  deadletter: " + s.topic(TopicRole.DEADLETTER), "  deadletter: missing-" + java.util.UUID.randomUUID())
                .replace("  consumer:\n", "  producer:\n    max.block.ms: \"3000\"\n  consumer:\n");
        java.nio.file.Files.writeString(s.configFile, config);
        String group = s.config().kafka().group();
        try (Sidecar sidecar = Sidecar.start(s.config()); var producer = s.producer();
                org.apache.kafka.clients.admin.Admin admin = org.apache.kafka.clients.admin.Admin.create(
                        Map.of(org.apache.kafka.clients.admin.AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrap()))) {
            Awaitility.await().atMost(Duration.ofSeconds(60)).until(sidecar::ready);

            // When a poison pill arrives (its dead-letter write fails) and a good record follows on the same partition
            var poison = producer.send(new org.apache.kafka.clients.producer.ProducerRecord<>(s.topic(TopicRole.ACTIVATIONS), "same-key",
                    "garbage".getBytes(StandardCharsets.UTF_8))).get();
            producer.send(new org.apache.kafka.clients.producer.ProducerRecord<>(s.topic(TopicRole.ACTIVATIONS), "same-key",
                    s.record("same-key", 0, 4, true))).get();

            // Then the sidecar reports unready, still decides the good record, and never commits past the pill
            Awaitility.await().atMost(Duration.ofSeconds(60)).until(() -> !sidecar.ready());
            assertThat(s.read(TopicRole.DECISIONS, 1, Duration.ofSeconds(30))).hasSize(1);
            Thread.sleep(1000); // a few commit intervals
            var tp = new org.apache.kafka.common.TopicPartition(poison.topic(), poison.partition());
            var committed = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(30, java.util.concurrent.TimeUnit.SECONDS)
                    .get(tp);
            assertThat(committed == null ? 0 : committed.offset()).as("committed offset of the pill's partition")
                    .isLessThanOrEqualTo(poison.offset());
        }
    }

    private static String header(ConsumerRecord<String, byte[]> r, String name) {
        Header h = r.headers().lastHeader(name);
        return h == null ? null : new String(h.value(), StandardCharsets.UTF_8);
    }

    private static List<String> readLines(Kcat kcat, String topic, int count) throws Exception {
        if (count == 0) {
            return List.of();
        }
        String out = new String(kcat.consume(topic, count, "%s\\n"), StandardCharsets.UTF_8);
        return out.lines().filter(l -> !l.isBlank()).toList();
    }
}
