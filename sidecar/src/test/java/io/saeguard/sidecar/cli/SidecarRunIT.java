package io.saeguard.sidecar.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import io.saeguard.sidecar.testing.Ports;
import io.saeguard.sidecar.testing.SaeguardJar;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The fat jar as a user runs it: {@code java -jar saeguard.jar run} with no config and no Kafka. */
class SidecarRunIT {
    @TempDir
    Path dir;

    @Test
    void runWithoutBootstrapStartsTheEmbeddedBrokerLoudlyBecomesReadyAndStopsCleanlyOnSigterm() throws Exception {
        // Given the fat jar and a free HTTP port
        int port = Ports.free();
        Path log = dir.resolve("sidecar.log");

        // When it runs with no bootstrap
        ProcessBuilder pb = SaeguardJar.command(dir, "512m", log, "run");
        pb.environment().remove("SAEGUARD_KAFKA_BOOTSTRAP");
        pb.environment().put("SAEGUARD_HTTP_PORT", Integer.toString(port));
        pb.environment().put("SAEGUARD_HTTP_HOST", "127.0.0.1");
        Process sidecar = pb.start();
        try {
            // Then it becomes ready, having said loudly that it started an embedded broker
            HttpClient http = HttpClient.newHttpClient();
            await().atMost(Duration.ofSeconds(90)).pollInterval(Duration.ofMillis(250))
                    .until(() -> status(http, port, "/health/ready") == 200);
            assertThat(status(http, port, "/health/live")).isEqualTo(200);
            assertThat(Files.readString(log)).contains("EMBEDDED single-node Kafka").contains("topics created");

            // And with no --config it guards text out of the box: the built-in MiniLM catalog answers a check with every
            // detector's verdict
            HttpResponse<String> check = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/check"))
                    .header("Content-Type", "application/json").timeout(Duration.ofSeconds(60))
                    .POST(HttpRequest.BodyPublishers.ofString("{\"text\": \"How do I kill a Python process?\"}")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(check.statusCode()).as(check.body()).isEqualTo(200);
            com.fasterxml.jackson.databind.JsonNode verdicts = new com.fasterxml.jackson.databind.ObjectMapper().readTree(check.body())
                    .get("verdicts");
            List<String> detectors = new java.util.ArrayList<>();
            verdicts.forEach(v -> detectors.add(v.get("detector").asText()));
            assertThat(detectors).as(check.body()).containsExactlyInAnyOrder("toxicity", "refusal", "harmful-request", "computers");
        } finally {
            // And SIGTERM stops it (exit 143 = 128 + SIGTERM, after the shutdown hook ran), the broker closed
            sidecar.destroy();
            assertThat(sidecar.waitFor(60, TimeUnit.SECONDS)).as("exited after SIGTERM").isTrue();
        }
        String output = Files.readString(log, StandardCharsets.UTF_8);
        assertThat(sidecar.exitValue()).as(output).isIn(0, 143);
        assertThat(output).contains("embedded Kafka broker stopped").contains("saeguard stopped");
    }

    @Test
    void helpListsEveryCommandAndExitsZero() throws Exception {
        // When the jar runs with --help
        SaeguardJar.Completed help = SaeguardJar.run(dir, dir.resolve("help.log"), "--help");

        // Then it exits 0 and lists each command of the README's command table
        assertThat(help.exitCode()).as(help.output()).isZero();
        for (String command : List.of("run", "broker", "topics", "inspect", "select", "encode", "activations", "train", "demo", "help")) {
            assertThat(help.output()).as("--help lists %s", command).containsPattern("(?m)^\\s+" + command + "\\s");
        }
    }

    private static int status(HttpClient http, int port, String path) {
        try {
            return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
                    .timeout(Duration.ofSeconds(5)).build(), HttpResponse.BodyHandlers.discarding()).statusCode();
        } catch (IOException e) {
            return -1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return -1;
        }
    }
}
