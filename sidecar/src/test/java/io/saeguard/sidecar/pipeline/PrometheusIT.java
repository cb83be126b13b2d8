package io.saeguard.sidecar.pipeline;

import io.saeguard.sidecar.app.Sidecar;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.saeguard.sae.PythonSaeFixtures;
import io.saeguard.sae.testing.ExternalTools;
import io.saeguard.sidecar.metrics.Metrics;
import io.saeguard.sidecar.testing.KafkaBroker;
import io.saeguard.sidecar.testing.KafkaBrokerExtension;
import io.saeguard.sidecar.testing.Ports;
import io.saeguard.topics.catalog.TopicRole;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The shipped dashboards and rules against real parts: the sidecar on a real broker with traffic
 * (decisions, alerts, dead letters), Debian's {@code prometheus} scraping its {@code /metrics}
 * (native histograms on) and evaluating {@code dashboards/prometheus/saeguard-rules.yml}; then
 * every PromQL expression of every dashboard panel and every rule goes through Prometheus' HTTP
 * API: it must parse, dashboard and recording-rule queries must return data, every alert rule must
 * evaluate without error and every series it reads must exist. {@code promtool check metrics}
 * must accept the exposition.
 */
@ExtendWith(KafkaBrokerExtension.class)
class PrometheusIT {
    private static final long SEED = new Random().nextLong() & 0x7fffffffL;
    private static final Path PROMETHEUS = Path.of("/usr/bin/prometheus");
    private static final Path PROMTOOL = Path.of("/usr/bin/promtool");
    private static final Path REPO = Path.of("..").toAbsolutePath().normalize();
    private static final Path DASHBOARDS = REPO.resolve("dashboards/grafana");
    private static final Path RULES = REPO.resolve("dashboards/prometheus/saeguard-rules.yml");
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());
    /** Grafana's variables, as a dashboard would expand them over a short range. */
    private static final Map<String, String> VARIABLES = Map.of("$__rate_interval", "1m", "$__interval", "1m", "$__range", "5m",
            "${__rate_interval}", "1m", "$sae", ".+", "${sae}", ".+", "$detector", ".+", "${detector}", ".+");
    private static final Pattern LABEL_VALUES = Pattern.compile("^label_values\\((.+),\\s*([a-zA-Z_][a-zA-Z0-9_]*)\\)$");
    /** The value of one sample line {@code NAME LABELS VALUE} of a text exposition. */
    private static double sample(String exposition, String name, String labels) {
        for (String line : exposition.split("\n")) {
            if (line.startsWith(name + labels + " ")) {
                return Double.parseDouble(line.substring(name.length() + labels.length() + 1).trim().split(" ")[0]);
            }
        }
        throw new AssertionError("no sample " + name + labels + " in the exposition");
    }

    private static final Pattern METRIC = Pattern.compile("\\b(saeguard[a-z0-9_:]*|up)\\b(?!\\s*\\()");

    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        System.out.println("PrometheusIT seed=" + SEED);
        PythonSaeFixtures.assumeAvailable();
        ExternalTools.assumeInstalled(Files.isExecutable(PROMETHEUS) && Files.isExecutable(PROMTOOL), PROMETHEUS + " and " + PROMTOOL, "prometheus");
    }

    @Test
    void everyDashboardAndRuleQueryRunsOnARealPrometheusScrapingTheSidecar(KafkaBroker kafka) throws Exception {
        long testStart = System.nanoTime();
        // Given a sidecar with traffic that decides, alerts and dead-letters
        String extra = """
                metrics:
                  calibration_tokens: 64
                  fvu_sample_rate: 1.0
                  full_encode_fraction: 1.0
                  watch:
                    test-sae: [0, 1]
                """;
        Scenario s = Scenario.create(dir, kafka.bootstrap(), SEED, extra);
        HttpClient http = HttpClient.newHttpClient();
        AtomicBoolean stop = new AtomicBoolean();
        Process prometheus = null;
        try (Sidecar sidecar = Sidecar.start(s.config())) {
            Awaitility.await().atMost(Duration.ofSeconds(60)).until(sidecar::ready);
            Thread traffic = new Thread(() -> traffic(s, stop), "prometheus-it-traffic");
            traffic.start();
            String metricsUrl = "http://127.0.0.1:" + sidecar.httpPort() + "/metrics";
            Awaitility.await().atMost(Duration.ofSeconds(60)).until(() -> get(http, metricsUrl).contains("saeguard_deadletters_total{")
                    && sidecar.metrics().alerts.labelValues(Scenario.DETECTOR).get() > 0);

            // Then promtool accepts the exposition
            String exposition = get(http, metricsUrl);
            Process check = new ProcessBuilder(PROMTOOL.toString(), "check", "metrics").redirectErrorStream(true).start();
            check.getOutputStream().write(exposition.getBytes(StandardCharsets.UTF_8));
            check.getOutputStream().close();
            String checkOut = new String(check.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(check.waitFor(60, TimeUnit.SECONDS)).isTrue();
            assertThat(check.exitValue()).as("promtool check metrics:\n" + checkOut).isZero();

            // When a real Prometheus scrapes it every second and evaluates the shipped rules
            int port = Ports.free();
            Path config = dir.resolve("prometheus.yml");
            Files.writeString(config, """
                    global:
                      scrape_interval: 1s
                      evaluation_interval: 1s
                    rule_files:
                      - %s
                    scrape_configs:
                      - job_name: saeguard
                        static_configs:
                          - targets: ['127.0.0.1:%d']
                    """.formatted(RULES, sidecar.httpPort()));
            Path log = Path.of("target", "prometheus-it.log").toAbsolutePath();
            prometheus = new ProcessBuilder(PROMETHEUS.toString(), "--config.file=" + config, "--storage.tsdb.path=" + dir.resolve("tsdb"),
                    "--web.listen-address=127.0.0.1:" + port, "--enable-feature=native-histograms")
                    .redirectErrorStream(true).redirectOutput(log.toFile()).start();
            String api = "http://127.0.0.1:" + port + "/api/v1/";
            Process prom = prometheus;
            Awaitility.await().atMost(Duration.ofSeconds(60)).until(() -> {
                if (!prom.isAlive()) {
                    throw new AssertionError("prometheus exited: " + Files.readString(log));
                }
                try {
                    return query(http, api, "up{job=\"saeguard\"} == 1").path("data").path("result").size() == 1;
                } catch (java.io.IOException e) {
                    return false; // not listening yet
                }
            });
            // A reviewer marks two alerts, after Prometheus' first scrape so that increase() sees the verdicts
            String base = "http://127.0.0.1:" + sidecar.httpPort();
            List<JsonNode> alerts = new ArrayList<>();
            JSON.readTree(get(http, base + "/v1/alerts?limit=2")).path("alerts").forEach(alerts::add);
            assertThat(alerts).hasSize(2);
            for (int i = 0; i < 2; i++) {
                String path = "/v1/alerts/" + URLEncoder.encode(alerts.get(i).path("request_id").asText(), StandardCharsets.UTF_8) + "/"
                        + alerts.get(i).path("seq").asLong() + "/review";
                HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(base + path)).POST(HttpRequest.BodyPublishers.ofString(
                        "{\"verdict\": \"" + (i == 0 ? "true_positive" : "false_positive") + "\"}")).build(), HttpResponse.BodyHandlers.ofString());
                assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
            }
            // rate() over [1m] needs two samples; the detectors' alert ratios need some alerts in the window
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
            while (query(http, api, "rate(saeguard_alerts_total[1m]) > 0").path("data").path("result").isEmpty()
                    || query(http, api, "rate(saeguard_deadletters_total[1m]) > 0").path("data").path("result").isEmpty()
                    || query(http, api, "saeguard:reviewed_precision:ratio1d").path("data").path("result").isEmpty()) {
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("Prometheus saw no alert or dead-letter rate within 90 s: alerts "
                            + query(http, api, "saeguard_alerts_total") + ", dead letters " + query(http, api, "saeguard_deadletters_total")
                            + ", names " + query(http, api, "count by (__name__) ({__name__=~\"saeguard_.*\"})"));
                }
                Thread.sleep(2000);
            }
            Thread.sleep(5000); // a few rule evaluations on top

            // Then the counter shows the verdicts, and the precision panel's query one true and one false positive
            JsonNode verdicts = query(http, api, "sum by (verdict) (saeguard_review_verdicts_total{detector=\"" + Scenario.DETECTOR + "\"})")
                    .path("data").path("result");
            Map<String, Double> byVerdict = new LinkedHashMap<>();
            verdicts.forEach(v -> byVerdict.put(v.path("metric").path("verdict").asText(), v.path("value").get(1).asDouble()));
            assertThat(byVerdict).containsExactlyInAnyOrderEntriesOf(Map.of("true_positive", 1.0, "false_positive", 1.0, "unsure", 0.0));
            JsonNode precision = query(http, api, "sum by (detector) (saeguard:reviewed_precision:ratio1d{detector=~\".+\"})").path("data")
                    .path("result");
            assertThat(precision).hasSize(1);
            assertThat(precision.get(0).path("value").get(1).asDouble()).as("reviewed precision of 1 tp and 1 fp").isStrictlyBetween(0.0, 1.0);

            // And the decision latency arrived as a native histogram too
            assertThat(query(http, api, "histogram_quantile(0.99, rate(saeguard_decision_latency_seconds[1m]))").path("data")
                    .path("result")).as("native-histogram quantile").isNotEmpty();

            // And every dashboard query parses and returns data
            Map<String, String> panelQueries = dashboardQueries();
            assertThat(panelQueries).as("queries found in dashboards/grafana/*.json").hasSizeGreaterThan(15);
            List<String> failures = new ArrayList<>();
            for (Map.Entry<String, String> q : panelQueries.entrySet()) {
                JsonNode r = query(http, api, q.getValue());
                if (!"success".equals(r.path("status").asText())) {
                    failures.add(q.getKey() + ": does not run: " + r.path("error").asText() + "\n    " + q.getValue());
                } else if (r.path("data").path("result").isEmpty()) {
                    failures.add(q.getKey() + ": no data\n    " + q.getValue());
                }
            }

            // And every rule evaluates: recording rules produce series, alert rules read only series that exist
            JsonNode rules = YAML.readTree(RULES.toFile());
            int recording = 0;
            int alerting = 0;
            for (JsonNode group : rules.path("groups")) {
                for (JsonNode rule : group.path("rules")) {
                    String expr = rule.path("expr").asText();
                    String name = rule.has("record") ? rule.get("record").asText() : rule.path("alert").asText();
                    JsonNode r = query(http, api, expr);
                    if (!"success".equals(r.path("status").asText())) {
                        failures.add("rule " + name + ": does not run: " + r.path("error").asText());
                        continue;
                    }
                    if (rule.has("record")) {
                        recording++;
                        if (query(http, api, name).path("data").path("result").isEmpty()) {
                            failures.add("recording rule " + name + ": no series recorded\n    " + expr);
                        }
                    } else {
                        alerting++;
                        for (String metric : metrics(expr)) {
                            if (query(http, api, "count({__name__=\"" + metric + "\"})").path("data").path("result").isEmpty()) {
                                failures.add("alert " + name + ": reads " + metric + ", which has no series");
                            }
                        }
                    }
                }
            }
            for (JsonNode g : query(http, api, null, "rules").path("data").path("groups")) {
                for (JsonNode rule : g.path("rules")) {
                    if (!"ok".equals(rule.path("health").asText())) {
                        failures.add("Prometheus evaluates rule " + rule.path("name").asText() + " as " + rule.path("health").asText() + ": "
                                + rule.path("lastError").asText());
                    }
                }
            }
            System.out.println("PrometheusIT: " + panelQueries.size() + " dashboard queries, " + recording + " recording and " + alerting
                    + " alert rules checked; problems: " + failures.size());
            assertThat(failures).as("queries that failed against the real Prometheus").isEmpty();
            assertThat(recording).isPositive();
            assertThat(alerting).isGreaterThanOrEqualTo(8);
            assertThat(query(http, api, "count by (stage) (histogram_count(saeguard_stage_latency_seconds) > 0)").path("data").path("result"))
                    .as("every latency stage scraped with observations").hasSize(Metrics.STAGES.size());

            // And once the traffic stops and every output is acknowledged, the stages add up to the decision latency
            stop.set(true);
            traffic.join(30_000);
            Awaitility.await().atMost(Duration.ofSeconds(60)).until(() -> sidecar.metrics().inflightTokens.get() == 0);
            String last = get(http, metricsUrl);
            double decided = sample(last, "saeguard_decision_latency_seconds_count", "");
            double total = sample(last, "saeguard_decision_latency_seconds_sum", "");
            double stageSum = 0;
            for (String stage : Metrics.STAGES) {
                String label = "{stage=\"" + stage + "\"}";
                assertThat(sample(last, "saeguard_stage_latency_seconds_count", label)).as("%s observations", stage).isEqualTo(decided);
                stageSum += sample(last, "saeguard_stage_latency_seconds_sum", label);
            }
            assertThat(decided).isPositive();
            // The engine thread's time by part: the encode part is timed over the same span as saeguard_encode_seconds
            double encodeSeconds = sample(last, "saeguard_encode_seconds_sum", "{device=\"cpu\",sae=\"" + Scenario.SAE_ID + "\"}");
            assertThat(encodeSeconds).isPositive();
            assertThat(sample(last, "saeguard_engine_busy_seconds_total", "{part=\"encode\"}")).as("engine busy, encode part")
                    .isCloseTo(encodeSeconds, org.assertj.core.data.Offset.offset(1e-6 * decided + 1e-9));
            double busy = 0;
            for (String part : Metrics.ENGINE_PARTS) {
                busy += sample(last, "saeguard_engine_busy_seconds_total", "{part=\"" + part + "\"}");
            }
            for (String part : List.of("assemble", "features", "detect", "publish", "fvu")) {
                assertThat(sample(last, "saeguard_engine_busy_seconds_total", "{part=\"" + part + "\"}")).as("engine busy, %s", part)
                        .isPositive();
            }
            assertThat(sample(last, "saeguard_engine_busy_seconds_total", "{part=\"prompt_model\"}")).as("no prompt model").isZero();
            assertThat(busy).as("engine busy seconds, all parts, within the test's wall time")
                    .isLessThan((System.nanoTime() - testStart) / 1e9);
            // ingest + engine + egress = acknowledged - record timestamp per decision, in whole milliseconds each
            assertThat(stageSum).as("sum of the stages vs the decision latency").isCloseTo(total, org.assertj.core.data.Offset.offset(
                    0.002 * decided + 1e-6));
        } finally {
            stop.set(true);
            if (prometheus != null) {
                prometheus.destroy();
                prometheus.waitFor(20, TimeUnit.SECONDS);
            }
        }
    }

    /** Records of ever new requests, some firing the planted detector, and a malformed record every 20. */
    private static void traffic(Scenario s, AtomicBoolean stop) {
        try (KafkaProducer<String, byte[]> p = s.producer()) {
            for (int i = 0; !stop.get(); i++) {
                // 16 concurrent requests of 10 records each; alerts are raised once per request, so requests keep coming
                String request = "req-" + (i % 16) + "-" + (i / 160);
                long position = (long) ((i / 16) % 10) * Scenario.TOKENS_PER_RECORD;
                byte[] value = i % 20 == 19 ? "not a safetensors record".getBytes(StandardCharsets.UTF_8)
                        : s.record(request, (i * Scenario.TOKENS_PER_RECORD) % s.tokens, position, false);
                p.send(new ProducerRecord<>(s.topic(TopicRole.ACTIVATIONS), request, value));
                Thread.sleep(50);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Every panel target's expression (and each template variable's label_values query), keyed by dashboard and panel. */
    private static Map<String, String> dashboardQueries() throws Exception {
        Map<String, String> out = new LinkedHashMap<>();
        try (Stream<Path> files = Files.list(DASHBOARDS)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".json")).sorted().toList()) {
                JsonNode d = JSON.readTree(f.toFile());
                collect(f.getFileName().toString(), d.path("panels"), out);
                for (JsonNode v : d.path("templating").path("list")) {
                    JsonNode q = v.path("query");
                    String text = q.isObject() ? q.path("query").asText() : q.asText();
                    Matcher m = LABEL_VALUES.matcher(text.trim());
                    if (m.matches()) {
                        out.put(f.getFileName() + " variable " + v.path("name").asText(), "count by (" + m.group(2) + ") (" + m.group(1) + ")");
                    }
                }
            }
        }
        return out;
    }

    private static void collect(String dashboard, JsonNode panels, Map<String, String> out) {
        for (JsonNode p : panels) {
            collect(dashboard, p.path("panels"), out); // rows hold their panels
            int i = 0;
            for (JsonNode t : p.path("targets")) {
                String expr = t.path("expr").asText("");
                if (expr.isBlank()) {
                    continue;
                }
                for (Map.Entry<String, String> v : VARIABLES.entrySet()) {
                    expr = expr.replace(v.getKey(), v.getValue());
                }
                out.put(dashboard + " \"" + p.path("title").asText() + "\" #" + i++, expr);
            }
        }
    }

    /** Metric names an expression reads (not functions, not the label names inside braces). */
    private static Set<String> metrics(String expr) {
        Set<String> out = new LinkedHashSet<>();
        Matcher m = METRIC.matcher(expr.replaceAll("\\{[^}]*}", "{}").replaceAll("\\b(by|without|on|ignoring|group_left|group_right)\\s*\\([^)]*\\)", ""));
        while (m.find()) {
            out.add(m.group(1));
        }
        return out;
    }

    private static JsonNode query(HttpClient http, String api, String promql) throws Exception {
        return query(http, api, promql, "query");
    }

    private static JsonNode query(HttpClient http, String api, String promql, String endpoint) throws Exception {
        String url = api + endpoint + (promql == null ? "" : "?query=" + URLEncoder.encode(promql, StandardCharsets.UTF_8));
        return JSON.readTree(http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(30)).build(),
                HttpResponse.BodyHandlers.ofString()).body());
    }

    private static String get(HttpClient http, String url) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(url)).header("Accept", "text/plain; version=0.0.4").build(),
                HttpResponse.BodyHandlers.ofString()).body();
    }
}
