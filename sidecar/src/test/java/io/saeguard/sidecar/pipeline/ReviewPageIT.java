package io.saeguard.sidecar.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.saeguard.sae.PythonSaeFixtures;
import io.saeguard.sae.TestSeed;
import io.saeguard.sae.testing.ExternalTools;
import io.saeguard.sidecar.app.Sidecar;
import io.saeguard.sidecar.testing.Chromium;
import io.saeguard.sidecar.testing.KafkaBroker;
import io.saeguard.sidecar.testing.KafkaBrokerExtension;
import io.saeguard.sidecar.testing.PrometheusServer;
import io.saeguard.topics.catalog.TopicRole;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Reviewing alerts on the live page, in Debian's headless Chromium (DevTools protocol): the browser logs in with a
 * read token (its login prompt, answered over CDP), the reviewer pastes a token with the {@code review} scope into the
 * page. Verdicts marked on one replica's page show on another replica's page and on a restarted replica's (they live in
 * the shared reviews topic, not in a replica); marking works with Tab, Enter and Space only; a token without the
 * {@code review} scope is shown its 403 and nothing is stored; a note holding HTML shows as text; two detectors' alerts
 * on one chunk are two rows with their own verdicts. A real Prometheus
 * scraping both replicas counts each verdict once ({@code saeguard_review_verdicts_total}), and the dashboards' review
 * panel queries (on the shipped recording rules) have data.
 */
@ExtendWith(KafkaBrokerExtension.class)
class ReviewPageIT {
    private static final long SEED = TestSeed.draw("ReviewPageIT");
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient HTTP = HttpClient.newHttpClient();
    static final String READER = "reader-" + "0123456789abcdef".repeat(3);
    static final String REVIEWER = "reviewer-" + "fedcba9876543210".repeat(3);
    private static final Path REPO = Path.of("..").toAbsolutePath().normalize();
    private static final Path RULES = REPO.resolve("dashboards/prometheus/saeguard-rules.yml");
    static final String HTML_NOTE = "<img src=x onerror=\"window.__injected=1\"> looks like a real threat";

    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        PythonSaeFixtures.assumeAvailable();
        ExternalTools.assumeInstalled(Chromium.installed(), Chromium.BINARY.toString(), "chromium");
        ExternalTools.assumeInstalled(PrometheusServer.installed(), PrometheusServer.BINARY.toString(), "prometheus");
    }

    /** The scenario with two tokens: {@code dashboards} may read, {@code alice} may read and review. */
    private Scenario scenario(KafkaBroker kafka) throws Exception {
        Scenario s = Scenario.create(dir, kafka.bootstrap(), SEED, "");
        Files.writeString(dir.resolve("reader.token"), READER + "\n");
        Files.writeString(dir.resolve("reviewer.token"), REVIEWER + "\n");
        String yaml = Files.readString(s.configFile);
        String http = """
                http:
                  host: 127.0.0.1
                  port: 0
                  auth:
                    tokens:
                      - {name: dashboards, token_file: reader.token, scopes: [read]}
                      - {name: alice, token_file: reviewer.token, scopes: [read, review]}
                """;
        Files.writeString(s.configFile, yaml.replace("http:\n  host: 127.0.0.1\n  port: 0\n", http));
        assertThat(Files.readString(s.configFile)).contains("token_file: reviewer.token");
        return s;
    }

    @Test
    void verdictsMarkedOnOneReplicasPageShowOnAnotherReplicasPageAndAfterARestart(KafkaBroker kafka) throws Exception {
        // Given two replicas sharing the broker, two alerted requests, and each replica's page open
        Scenario s = scenario(kafka);
        List<Sidecar> replicas = new ArrayList<>();
        try (Chromium pageA = Chromium.start(1400, 900); Chromium pageB = Chromium.start(1400, 900)) {
            replicas.add(Sidecar.start(s.config()));
            replicas.add(Sidecar.start(s.config()));
            awaitReady(replicas);
            alert(s, "rev-a");
            alert(s, "rev-b");
            for (Sidecar r : replicas) {
                awaitListed(r, "rev-a", "rev-b");
            }
            open(pageA, replicas.get(0), "rev-a", "rev-b");
            open(pageB, replicas.get(1), "rev-a", "rev-b");

            try (PrometheusServer prometheus = PrometheusServer.start(dir, "review-page-it", replicas.stream().map(Sidecar::httpPort).toList(),
                    READER, List.of(RULES))) {
                // When the reviewer pastes a review token on A's page and marks one alert true, with an HTML note, and one false
                setToken(pageA, REVIEWER);
                mark(pageA, "rev-a", "true positive", HTML_NOTE);
                mark(pageA, "rev-b", "false positive", "");

                // Then B's page shows both verdicts, the note as text, and nothing the note held ran
                awaitVerdict(pageB, "rev-a", "true positive · alice — " + HTML_NOTE);
                awaitVerdict(pageB, "rev-b", "false positive · alice");
                assertThat(pageB.eval("document.querySelectorAll('img').length").asInt()).isZero();
                assertThat(pageB.eval("window.__injected === undefined").asBoolean()).isTrue();
                assertThat(pageA.eval("document.getElementById('message').textContent").asText()).contains("marked");
                assertThat(pageA.eval("location.href").asText()).doesNotContain(REVIEWER);

                // And Prometheus, scraping both replicas, counts each verdict once, and every review panel query has data
                Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> verdictCounts(prometheus)
                        .equals(java.util.Map.of("true_positive", 1.0, "false_positive", 1.0, "unsure", 0.0)));
                List<String> panels = reviewPanelQueries();
                assertThat(panels).as("review panels in dashboards/grafana").hasSizeGreaterThanOrEqualTo(2);
                for (String q : panels) {
                    Awaitility.await(q).atMost(Duration.ofSeconds(30)).until(() -> !prometheus.query(q).isEmpty());
                }
                assertThat(prometheus.query("sum(saeguard:reviewed_precision:ratio1d{detector=\"planted\"})").get(0).path("value").get(1)
                        .asDouble()).as("reviewed precision: one true, one false positive").isCloseTo(0.5, org.assertj.core.data.Offset.offset(1e-9));
            }

            // And the review filter shows only what matches on B's page
            pageB.eval("document.getElementById('f-review').value = 'false_positive';"
                    + "document.getElementById('f-review').dispatchEvent(new Event('change'))");
            assertThat(visibleRequests(pageB)).containsExactly("rev-b");

            // When replica A restarts
            replicas.remove(0).close();
            replicas.add(0, Sidecar.start(s.config()));
            awaitReady(replicas);

            // Then its fresh page shows the same verdicts
            awaitListed(replicas.get(0), "rev-a", "rev-b");
            open(pageA, replicas.get(0), "rev-a", "rev-b");
            awaitVerdict(pageA, "rev-a", "true positive · alice — " + HTML_NOTE);
            awaitVerdict(pageA, "rev-b", "false positive · alice");
            pageA.screenshot(Path.of("target", "review-page.png"));
        } finally {
            replicas.forEach(Sidecar::close);
        }
    }

    @Test
    void aReviewerMarksAnAlertWithTheKeyboardOnly(KafkaBroker kafka) throws Exception {
        // Given one replica with an alerted request, and its page open
        Scenario s = scenario(kafka);
        try (Sidecar sidecar = Sidecar.start(s.config()); Chromium page = Chromium.start(1400, 900)) {
            awaitReady(List.of(sidecar));
            alert(s, "rev-key");
            awaitListed(sidecar, "rev-key");
            open(page, sidecar, "rev-key");

            // When the reviewer tabs to the token field and types the token, tabs to the alert's note, types it,
            // tabs to "unsure" and presses Space
            tabTo(page, "review token, kept in this browser tab only");
            page.type(REVIEWER);
            String alert = "alert rev-key seq " + seq(page, "rev-key") + " " + Scenario.DETECTOR;
            tabTo(page, "note for " + alert);
            assertThat(page.eval("getComputedStyle(document.activeElement).outlineStyle").asText()).as("focus is visible").isEqualTo("solid");
            page.type("checked by keyboard");
            tabTo(page, "mark " + alert + " unsure");
            page.press(" ", false);

            // Then the verdict is stored and shown, and focus stays where the reviewer was
            awaitVerdict(page, "rev-key", "unsure · alice — checked by keyboard");
            assertThat(storedVerdicts(sidecar)).containsExactly("rev-key=unsure");
            assertThat(activeLabel(page)).isEqualTo("mark " + alert + " unsure");

            // And Enter on the request opens its view with focus on its title; Enter on "true positive" there marks it
            shiftTabTo(page, "show every decision and alert of request rev-key");
            page.press("Enter", false);
            Awaitility.await().atMost(Duration.ofSeconds(5)).until(() -> page.eval("document.activeElement.id").asText().equals("request-title"));
            assertThat(page.eval("document.querySelectorAll('#request-rows tr.request-row').length").asInt()).isEqualTo(1);
            tabTo(page, "mark " + alert + " true positive");
            page.press("Enter", false);
            Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> storedVerdicts(sidecar).equals(List.of("rev-key=true_positive")));
            page.press("Escape", false);
            assertThat(page.eval("document.getElementById('request-view').hidden").asBoolean()).isTrue();
            assertThat(activeLabel(page)).isEqualTo("show every decision and alert of request rev-key");
        }
    }

    @Test
    void theRequestViewListsTheRequestsAllowDecisionBesideItsAlert(KafkaBroker kafka) throws Exception {
        // Given one replica, a request decided allow on its first record (which raises no alert) and then alerted on its
        // second, and the page open
        Scenario s = scenario(kafka);
        try (Sidecar sidecar = Sidecar.start(s.config()); Chromium page = Chromium.start(1400, 900)) {
            awaitReady(List.of(sidecar));
            s.produce(s.topic(TopicRole.ACTIVATIONS), "rev-all", s.record("rev-all", firstQuietRecord(s), 0, false));
            alert(s, "rev-all");
            String alerted = s.expectedAction(firstFiringRecord(s), 4);
            awaitListed(sidecar, "rev-all");
            open(page, sidecar, "rev-all");

            // When the request's view is opened
            page.eval(row("rev-all") + ".querySelector('button.req').click()");

            // Then it lists the allow decision (seq 0, no review controls) and then the alert (seq 1, with them)
            String rows = "[...document.querySelectorAll('#request-rows tr.request-row')]"
                    + ".map(r => r.dataset.kind + ':' + r.dataset.seq + ':' + r.querySelector('td.action').textContent).join(',')";
            Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> page.eval(rows).asText().equals("decision:0:allow,alert:1:" + alerted));
            String allowRow = "document.querySelector('#request-rows tr.request-row[data-kind=\"decision\"]')";
            assertThat(page.eval(allowRow + ".querySelectorAll('button[data-verdict]').length").asInt()).isZero();
            assertThat(page.eval("document.querySelectorAll('#request-rows tr[data-kind=\"alert\"] button[data-verdict]').length").asInt())
                    .isEqualTo(3);
            assertThat(page.eval("document.getElementById('request-note').textContent").asText()).startsWith("2 decisions read back");
            page.screenshot(Path.of("target", "request-view.png"));
        }
    }

    @Test
    void twoDetectorsAlertingOnOneChunkAreReviewedApart(KafkaBroker kafka) throws Exception {
        // Given a second detector identical to the planted one, so one record raises two alerts with one request id and seq
        Scenario s = scenario(kafka);
        Path twin = dir.resolve("twin.yaml");
        Files.writeString(twin, Files.readString(dir.resolve("planted.yaml")).replace("id: " + Scenario.DETECTOR, "id: twin"));
        s.addDetector(twin);
        try (Sidecar sidecar = Sidecar.start(s.config()); Chromium page = Chromium.start(1400, 900)) {
            awaitReady(List.of(sidecar));
            alert(s, "rev-two");
            awaitListed(sidecar, "rev-two");
            open(page, sidecar, "rev-two");
            String twinRow = "document.querySelector('#alerts tr.alert-row[data-request-id=\"rev-two\"][data-detector=\"twin\"]')";
            Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> page.eval(twinRow + " !== null").asBoolean());
            assertThat(page.eval("document.querySelectorAll('#alerts tr.alert-row[data-request-id=\"rev-two\"]').length").asInt()).isEqualTo(2);

            // When the reviewer marks only the twin detector's alert
            setToken(page, REVIEWER);
            page.eval(twinRow + ".querySelector('button[data-verdict=\"false_positive\"]').click()");

            // Then only that alert carries the verdict, on the page and in the store
            Awaitility.await().atMost(Duration.ofSeconds(30))
                    .until(() -> page.eval(twinRow + ".querySelector('.verdict').textContent").asText().equals("false positive · alice"));
            String plantedRow = "document.querySelector('#alerts tr.alert-row[data-request-id=\"rev-two\"][data-detector=\"" + Scenario.DETECTOR
                    + "\"]')";
            assertThat(page.eval(plantedRow + ".querySelector('.verdict').textContent").asText()).isEqualTo("not reviewed");
            assertThat(get(sidecar, "/v1/reviews", READER).path("reviews")).singleElement()
                    .satisfies(r -> assertThat(r.path("detector").asText()).isEqualTo("twin"));
        }
    }

    @Test
    void aTokenWithoutTheReviewScopeIsShownItsForbiddenAnswerAndNothingIsStored(KafkaBroker kafka) throws Exception {
        // Given one replica with an alerted request, and its page open
        Scenario s = scenario(kafka);
        try (Sidecar sidecar = Sidecar.start(s.config()); Chromium page = Chromium.start(1400, 900)) {
            awaitReady(List.of(sidecar));
            alert(s, "rev-ro");
            awaitListed(sidecar, "rev-ro");
            open(page, sidecar, "rev-ro");

            // When the read-only token is pasted and used to mark the alert
            setToken(page, READER);
            page.eval(row("rev-ro") + ".querySelector('button[data-verdict=\"true_positive\"]').click()");

            // Then the page says 403 and that nothing was stored, and nothing was
            Awaitility.await().atMost(Duration.ofSeconds(30))
                    .until(() -> page.eval("document.getElementById('message').textContent").asText().startsWith("403"));
            assertThat(page.eval("document.getElementById('message').textContent").asText()).contains("review scope")
                    .contains("Nothing was stored");
            assertThat(page.eval(row("rev-ro") + ".querySelector('.verdict').textContent").asText()).isEqualTo("not reviewed");
            assertThat(storedVerdicts(sidecar)).isEmpty();
        }
    }

    /** The fleet's verdict counts for the planted detector, summed over the replicas Prometheus scrapes. */
    private static java.util.Map<String, Double> verdictCounts(PrometheusServer prometheus) throws Exception {
        java.util.Map<String, Double> out = new java.util.HashMap<>();
        prometheus.query("sum by (verdict) (saeguard_review_verdicts_total{detector=\"planted\"})")
                .forEach(r -> out.put(r.path("metric").path("verdict").asText(), r.path("value").get(1).asDouble()));
        return out;
    }

    /** Every dashboard panel query about reviews, with Grafana's variables expanded as a dashboard would. */
    private static List<String> reviewPanelQueries() throws Exception {
        List<String> out = new ArrayList<>();
        try (var files = Files.list(REPO.resolve("dashboards/grafana"))) {
            for (Path f : files.filter(f -> f.toString().endsWith(".json")).sorted().toList()) {
                for (JsonNode expr : JSON.readTree(f.toFile()).findValues("expr")) {
                    if (expr.asText().contains("review")) {
                        out.add(expr.asText().replace("$detector", ".+").replace("${detector}", ".+")
                                .replace("$__rate_interval", "1m").replace("$__range", "5m"));
                    }
                }
            }
        }
        return out;
    }

    private static void awaitReady(List<Sidecar> replicas) {
        for (Sidecar r : replicas) {
            Awaitility.await().atMost(Duration.ofSeconds(90)).until(r::ready);
        }
    }

    /** Produces a record that fires the planted detector, as request {@code requestId}. */
    private static void alert(Scenario s, String requestId) throws Exception {
        s.produce(s.topic(TopicRole.ACTIVATIONS), requestId, s.record(requestId, firstFiringRecord(s), 4, false));
    }

    /** Waits until the replica's alert listing (fed by the alerts topic) holds an alert of each request. */
    private static void awaitListed(Sidecar replica, String... requestIds) {
        Awaitility.await().atMost(Duration.ofSeconds(60)).until(() -> {
            JsonNode alerts = get(replica, "/v1/alerts?limit=200", READER).path("alerts");
            List<String> ids = new ArrayList<>();
            alerts.forEach(a -> ids.add(a.path("request_id").asText()));
            return ids.containsAll(List.of(requestIds));
        });
    }

    /** Logs the browser in with the read token, opens the replica's page and waits for the requests' rows. */
    private static void open(Chromium page, Sidecar replica, String... requestIds) throws Exception {
        page.login("dashboards", READER);
        page.navigate("http://127.0.0.1:" + replica.httpPort() + "/");
        Awaitility.await().atMost(Duration.ofSeconds(30))
                .until(() -> "live".equals(page.eval("document.getElementById('status').textContent").asText()));
        for (String id : requestIds) {
            Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> page.eval(row(id) + " !== null").asBoolean());
        }
    }

    private static String row(String requestId) {
        return "document.querySelector('#alerts tr.alert-row[data-request-id=\"" + requestId + "\"]')";
    }

    private static long seq(Chromium page, String requestId) throws Exception {
        return page.eval(row(requestId) + ".dataset.seq").asLong();
    }

    /** Pastes a token into the page's token field (an input event, as a paste fires). */
    private static void setToken(Chromium page, String token) throws Exception {
        page.eval("const t = document.getElementById('token'); t.value = '" + token + "'; t.dispatchEvent(new Event('input'))");
        assertThat(page.eval("sessionStorage.getItem('saeguard.reviewToken')").asText()).isEqualTo(token);
    }

    /** Types the note into the alert's note field and presses the verdict's button. */
    private static void mark(Chromium page, String requestId, String verdict, String note) throws Exception {
        page.eval(row(requestId) + ".querySelector('input.note').value = " + JSON.writeValueAsString(note));
        page.eval(row(requestId) + ".querySelector('button[aria-label$=\" " + verdict + "\"]').click()");
        awaitVerdict(page, requestId, verdict + " · alice" + (note.isEmpty() ? "" : " — " + note));
    }

    private static void awaitVerdict(Chromium page, String requestId, String text) {
        Awaitility.await().atMost(Duration.ofSeconds(30))
                .until(() -> page.eval(row(requestId) + ".querySelector('.verdict').textContent").asText().equals(text));
    }

    private static List<String> visibleRequests(Chromium page) throws Exception {
        List<String> out = new ArrayList<>();
        page.eval("[...document.querySelectorAll('#alerts tr.alert-row')].filter(r => !r.hidden).map(r => r.dataset.requestId)")
                .forEach(n -> out.add(n.asText()));
        return out;
    }

    /** Presses Tab (at most 200 times) until the focused element has the accessible label {@code label}. */
    private static void tabTo(Chromium page, String label) throws Exception {
        tab(page, label, false);
    }

    /** Presses Shift+Tab until the focused element has the accessible label {@code label}. */
    private static void shiftTabTo(Chromium page, String label) throws Exception {
        tab(page, label, true);
    }

    private static void tab(Chromium page, String label, boolean back) throws Exception {
        for (int i = 0; i < 200; i++) {
            if (label.equals(activeLabel(page))) {
                return;
            }
            page.press("Tab", back);
        }
        throw new AssertionError("Tab never reached '" + label + "'; focus is on '" + activeLabel(page) + "'");
    }

    private static String activeLabel(Chromium page) throws Exception {
        return page.eval("document.activeElement.getAttribute('aria-label') || ''").asText();
    }

    /** The replica's stored verdicts, {@code request=verdict}. */
    private static List<String> storedVerdicts(Sidecar replica) throws Exception {
        List<String> out = new ArrayList<>();
        get(replica, "/v1/reviews", READER).path("reviews").forEach(r -> out.add(r.path("request_id").asText() + "=" + r.path("verdict").asText()));
        return out;
    }

    private static JsonNode get(Sidecar replica, String path, String token) throws Exception {
        HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + replica.httpPort() + path))
                .header("Authorization", "Bearer " + token).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).as("GET %s: %s", path, r.body()).isEqualTo(200);
        return JSON.readTree(r.body());
    }

    /** The first record start whose reference codes fire nothing at request position 0 (where BOS does not count). */
    private static int firstQuietRecord(Scenario s) {
        for (int first = 0; first + Scenario.TOKENS_PER_RECORD <= s.tokens; first += Scenario.TOKENS_PER_RECORD) {
            if (s.expectedAction(first, 0).equals("allow")) {
                return first;
            }
        }
        throw new AssertionError("the scenario has no quiet record");
    }

    /** The first record start whose reference codes fire the planted detector (at request position 4). */
    private static int firstFiringRecord(Scenario s) {
        for (int first = 0; first + Scenario.TOKENS_PER_RECORD <= s.tokens; first += Scenario.TOKENS_PER_RECORD) {
            if (s.expectedScore(first, 4) >= 1.0) {
                return first;
            }
        }
        throw new AssertionError("the scenario has no firing record");
    }
}
