package io.saeguard.sidecar.pipeline;

import io.saeguard.sidecar.app.Sidecar;
import static org.assertj.core.api.Assertions.assertThat;

import io.saeguard.sae.PythonSaeFixtures;
import io.saeguard.sae.TestSeed;
import io.saeguard.sidecar.testing.KafkaBroker;
import io.saeguard.sidecar.testing.KafkaBrokerExtension;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/** The synchronous HTTP API's refusals: a full engine queue (503 with Retry-After), text without a prompt model (400). */
@ExtendWith(KafkaBrokerExtension.class)
class HttpApiIT {
    private static final long SEED = TestSeed.draw("HttpApiIT");

    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        PythonSaeFixtures.assumeAvailable();
    }

    private static HttpResponse<String> check(Sidecar sidecar, String contentType, byte[] body) throws Exception {
        return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + sidecar.httpPort() + "/v1/check"))
                .header("Content-Type", contentType).POST(HttpRequest.BodyPublishers.ofByteArray(body)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void aFullEngineQueueIsRefusedWith503AndRetryAfterAndServedOnceItDrains(KafkaBroker kafka) throws Exception {
        Scenario s = Scenario.create(dir, kafka.bootstrap(), SEED, "");
        try (Sidecar sidecar = Sidecar.start(s.config())) {
            byte[] record = s.record("http", 0, 4, true);
            assertThat(check(sidecar, "application/octet-stream", record).statusCode()).isEqualTo(200);

            // Given: the engine thread held, and more tasks queued behind it than the HTTP API accepts
            CountDownLatch release = new CountDownLatch(1);
            CompletableFuture<Object> held = sidecar.engine().call(() -> {
                try {
                    return release.await(60, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return false;
                }
            });
            List<CompletableFuture<Object>> queued = new ArrayList<>();
            for (int i = 0; i <= io.saeguard.sidecar.http.HttpApi.MAX_QUEUED; i++) {
                queued.add(sidecar.engine().call(() -> null));
            }

            // When a check arrives, Then it is refused at once, with a hint when to retry
            HttpResponse<String> refused = check(sidecar, "application/octet-stream", record);
            assertThat(refused.statusCode()).isEqualTo(503);
            assertThat(refused.headers().firstValue("Retry-After")).contains("1");
            assertThat(refused.body()).contains("engine queue is full");

            // And once the engine drains, the same check is served
            release.countDown();
            held.get(60, TimeUnit.SECONDS);
            CompletableFuture.allOf(queued.toArray(CompletableFuture[]::new)).get(60, TimeUnit.SECONDS);
            assertThat(check(sidecar, "application/octet-stream", record).statusCode()).isEqualTo(200);
            assertThat(sidecar.ready()).isTrue();
        }
    }

    @Test
    void textWithoutAPromptModelIsA400NamingTheMissingConfig(KafkaBroker kafka) throws Exception {
        Scenario s = Scenario.create(dir, kafka.bootstrap(), SEED, "");
        try (Sidecar sidecar = Sidecar.start(s.config())) {
            HttpResponse<String> r = check(sidecar, "application/json", "{\"text\": \"hello\"}".getBytes(java.nio.charset.StandardCharsets.UTF_8));

            assertThat(r.statusCode()).isEqualTo(400);
            assertThat(r.body()).contains("this sidecar has no prompt model ('prompts:' in its config)");
            assertThat(check(sidecar, "application/json", "{\"text\": 7}".getBytes(java.nio.charset.StandardCharsets.UTF_8)).body())
                    .contains("'text' must be a non-empty string");
        }
    }
}
