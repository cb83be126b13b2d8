package io.saeguard.sidecar.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.awaitility.Awaitility;

/**
 * Debian's {@code prometheus} scraping sidecars every second (job {@code saeguard}), with a bearer token from a file
 * when the sidecars need one, and its query API. Its log goes to {@code target/<name>-prometheus.log}.
 */
public final class PrometheusServer implements AutoCloseable {
    public static final Path BINARY = Path.of("/usr/bin/prometheus");
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Process process;
    private final String api;
    private final HttpClient http = HttpClient.newHttpClient();

    private PrometheusServer(Process process, String api) {
        this.process = process;
        this.api = api;
    }

    public static boolean installed() {
        return Files.isExecutable(BINARY);
    }

    /**
     * Starts Prometheus in {@code dir} scraping {@code 127.0.0.1:<port>} of each target with {@code bearerToken} and
     * evaluating {@code ruleFiles}; waits until every target is up.
     */
    public static PrometheusServer start(Path dir, String name, List<Integer> targetPorts, String bearerToken, List<Path> ruleFiles)
            throws Exception {
        Path tokenFile = dir.resolve("prometheus.token");
        Files.writeString(tokenFile, bearerToken);
        String targets = targetPorts.stream().map(p -> "'127.0.0.1:" + p + "'").collect(Collectors.joining(", "));
        Path config = dir.resolve("prometheus.yml");
        Files.writeString(config, """
                global:
                  scrape_interval: 1s
                  evaluation_interval: 1s
                rule_files: [%s]
                scrape_configs:
                  - job_name: saeguard
                    authorization:
                      credentials_file: %s
                    static_configs:
                      - targets: [%s]
                """.formatted(ruleFiles.stream().map(f -> "'" + f.toAbsolutePath() + "'").collect(Collectors.joining(", ")), tokenFile,
                targets));
        int port = Ports.free();
        Path log = Path.of("target", name + "-prometheus.log").toAbsolutePath();
        Files.createDirectories(log.getParent());
        Process p = new ProcessBuilder(BINARY.toString(), "--config.file=" + config, "--storage.tsdb.path=" + dir.resolve("tsdb"),
                "--web.listen-address=127.0.0.1:" + port).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        PrometheusServer server = new PrometheusServer(p, "http://127.0.0.1:" + port + "/api/v1/");
        try {
            Awaitility.await().atMost(Duration.ofSeconds(60)).until(() -> {
                if (!p.isAlive()) {
                    throw new AssertionError("prometheus exited: " + Files.readString(log));
                }
                try {
                    return server.query("up{job=\"saeguard\"} == 1").size() == targetPorts.size();
                } catch (IOException e) {
                    return false; // not listening yet
                }
            });
        } catch (RuntimeException | Error e) {
            server.close();
            throw e;
        }
        return server;
    }

    /** An instant query's result vector ({@code data.result}). */
    public JsonNode query(String promql) throws Exception {
        String url = api + "query?query=" + URLEncoder.encode(promql, StandardCharsets.UTF_8);
        JsonNode body = JSON.readTree(http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(30)).build(),
                HttpResponse.BodyHandlers.ofString()).body());
        if (!"success".equals(body.path("status").asText())) {
            throw new AssertionError("query " + promql + " failed: " + body);
        }
        return body.path("data").path("result");
    }

    @Override
    public void close() {
        process.destroy();
        try {
            if (!process.waitFor(20, TimeUnit.SECONDS)) {
                process.destroyForcibly();
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }
}
