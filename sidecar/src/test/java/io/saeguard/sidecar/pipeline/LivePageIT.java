package io.saeguard.sidecar.pipeline;

import io.saeguard.sidecar.app.Sidecar;
import static org.assertj.core.api.Assertions.assertThat;

import io.saeguard.sae.PythonSaeFixtures;
import io.saeguard.sae.testing.ExternalTools;
import io.saeguard.sidecar.testing.Chromium;
import io.saeguard.sidecar.testing.KafkaBroker;
import io.saeguard.sidecar.testing.KafkaBrokerExtension;
import io.saeguard.topics.catalog.TopicRole;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Random;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The live page in a real browser (Debian's headless Chromium over the DevTools protocol): it
 * loads, connects to the alert stream, shows an alert produced while it is open, lists the
 * detector's watched feature with its label, and a screenshot lands in {@code target/}.
 */
@ExtendWith(KafkaBrokerExtension.class)
class LivePageIT {
    private static final long SEED = new Random().nextLong() & 0x7fffffffL;
    static final Path SCREENSHOT = Path.of("target", "live-page.png");

    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        System.out.println("LivePageIT seed=" + SEED);
        PythonSaeFixtures.assumeAvailable();
        ExternalTools.assumeInstalled(Chromium.installed(), Chromium.BINARY.toString(), "chromium");
    }

    @Test
    void anAlertProducedWhileThePageIsOpenAppearsOnIt(KafkaBroker kafka) throws Exception {
        // Given a sidecar and the live page open in Chromium, connected to the alert stream
        Scenario s = Scenario.create(dir, kafka.bootstrap(), SEED, "");
        int firing = firstFiringRecord(s);
        try (Sidecar sidecar = Sidecar.start(s.config()); Chromium browser = Chromium.start(1280, 900)) {
            Awaitility.await().atMost(Duration.ofSeconds(60)).until(sidecar::ready);
            browser.navigate("http://127.0.0.1:" + sidecar.httpPort() + "/");
            Awaitility.await().atMost(Duration.ofSeconds(30))
                    .until(() -> "live".equals(browser.eval("document.getElementById('status').textContent").asText()));
            assertThat(browser.eval("document.querySelectorAll('tr.alert-row').length").asInt()).isZero();

            // When a record that fires the planted detector arrives on Kafka
            s.produce(s.topic(TopicRole.ACTIVATIONS), "live-req", s.record("live-req", firing, 4, false));

            // Then its alert shows up on the open page, with the detector and an action
            String row = "document.querySelector('tr.alert-row[data-request-id=\"live-req\"]')";
            Awaitility.await().atMost(Duration.ofSeconds(60)).until(() -> browser.eval(row + " !== null").asBoolean());
            String text = browser.eval(row + ".textContent").asText();
            assertThat(text).contains("live-req").contains(Scenario.DETECTOR).containsPattern("flag|block");

            // And the features panel lists the watched feature with its label
            Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> browser.eval("document.getElementById('features').textContent")
                    .asText().contains("planted concept"));
            assertThat(browser.eval("document.getElementById('features').textContent").asText()).contains("#" + s.feature);
            Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> !browser.eval("document.querySelector('#features .health')"
                    + ".textContent").asText().startsWith("0 tokens"));

            byte[] png = browser.screenshot(SCREENSHOT);
            assertThat(png.length).isGreaterThan(10_000);
            assertThat(png).startsWith(0x89, 'P', 'N', 'G');
            System.out.println("LivePageIT screenshot: " + SCREENSHOT.toAbsolutePath() + " (" + png.length + " bytes)");
        }
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
