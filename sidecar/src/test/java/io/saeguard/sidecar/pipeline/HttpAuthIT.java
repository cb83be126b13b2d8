package io.saeguard.sidecar.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import io.saeguard.sae.PythonSaeFixtures;
import io.saeguard.sae.TestSeed;
import io.saeguard.sidecar.app.Sidecar;
import io.saeguard.sidecar.testing.KafkaBroker;
import io.saeguard.sidecar.testing.KafkaBrokerExtension;
import io.saeguard.sidecar.testing.RawHttp;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every endpoint × {no token, wrong token, read, admin} against a running sidecar with tokens: open endpoints answer
 * everyone, the others 401 (with {@code WWW-Authenticate: Bearer}) without a valid token and 403 without the scope,
 * both as JSON. (The review scope's own row, with a token that has it, is in {@code ReviewsExportIT}.)
 */
@ExtendWith(KafkaBrokerExtension.class)
class HttpAuthIT {
    private static final long SEED = TestSeed.draw("HttpAuthIT");
    static final String READER = "reader-" + "0123456789abcdef".repeat(3);
    static final String ADMIN = "admin-" + "fedcba9876543210".repeat(3);

    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        PythonSaeFixtures.assumeAvailable();
    }

    /** The scenario's config with the reader and admin tokens (from files and the environment) and {@code extraHttp}. */
    static Scenario withTokens(Path dir, String bootstrap, long seed, String extraHttp) throws Exception {
        Scenario s = Scenario.create(dir, bootstrap, seed, "");
        Files.writeString(dir.resolve("reader.token"), READER + "\n");
        Files.writeString(dir.resolve("admin.token"), ADMIN);
        String yaml = Files.readString(s.configFile);
        String http = """
                http:
                  host: 127.0.0.1
                  port: 0
                  auth:
                    tokens:
                      - {name: dashboards, token_file: reader.token, scopes: [read]}
                      - {name: ops, token_file: admin.token, scopes: [admin]}
                """ + extraHttp;
        Files.writeString(s.configFile, yaml.replace("http:\n  host: 127.0.0.1\n  port: 0\n", http));
        assertThat(Files.readString(s.configFile)).contains("token_file: admin.token");
        return s;
    }

    private record Endpoint(String method, String path, String contentType, byte[] body, String scope, int served) {
        @Override
        public String toString() {
            return method + " " + path;
        }
    }

    @Test
    void everyEndpointAnswersEachCallerAsItsScopeSays(KafkaBroker kafka) throws Exception {
        Scenario s = withTokens(dir, kafka.bootstrap(), SEED, "");
        byte[] detector = Files.readAllBytes(dir.resolve("planted.yaml"));
        byte[] json = "{\"sae\": \"test-sae\", \"activations\": [[%s]]}".formatted("0.5,".repeat(s.dIn - 1) + "0.5")
                .getBytes(StandardCharsets.UTF_8);
        List<Endpoint> endpoints = List.of(
                new Endpoint("GET", "/health/live", "", new byte[0], "open", 200),
                new Endpoint("GET", "/metrics", "", new byte[0], "read", 200),
                new Endpoint("GET", "/", "", new byte[0], "read", 200),
                new Endpoint("GET", "/v1/features/top", "", new byte[0], "read", 200),
                new Endpoint("POST", "/v1/encode", "application/json", json, "read", 200),
                new Endpoint("POST", "/v1/check", "application/octet-stream", s.record("auth", 0, 0, true), "read", 200),
                new Endpoint("GET", "/v1/detectors", "", new byte[0], "read", 200),
                new Endpoint("GET", "/v1/detectors/planted", "", new byte[0], "read", 200),
                new Endpoint("GET", "/v1/alerts", "", new byte[0], "read", 200),
                new Endpoint("GET", "/v1/reviews", "", new byte[0], "read", 200),
                new Endpoint("GET", "/v1/requests/auth/decisions", "", new byte[0], "read", 200),
                new Endpoint("POST", "/v1/alerts/never-alerted/0/review", "application/json",
                        "{\"verdict\": \"unsure\"}".getBytes(StandardCharsets.UTF_8), "review", 404),
                new Endpoint("GET", "/v1/nothing-here", "", new byte[0], "any token", 404),
                new Endpoint("PUT", "/v1/detectors/planted", "application/yaml", detector, "admin", 200),
                new Endpoint("DELETE", "/v1/detectors/not-there", "", new byte[0], "admin", 404));
        Map<String, String> callers = new LinkedHashMap<>();
        callers.put("no token", "");
        callers.put("wrong token", "Bearer " + READER.replace('0', 'x'));
        callers.put("read", "Bearer " + READER);
        callers.put("admin", "Bearer " + ADMIN);

        try (Sidecar sidecar = Sidecar.start(s.config())) {
            List<String> wrong = new ArrayList<>();
            for (Endpoint e : endpoints) {
                for (Map.Entry<String, String> c : callers.entrySet()) {
                    // Given
                    Map<String, String> headers = new LinkedHashMap<>();
                    if (!c.getValue().isEmpty()) {
                        headers.put("Authorization", c.getValue());
                    }
                    if (!e.contentType().isEmpty()) {
                        headers.put("Content-Type", e.contentType());
                    }
                    int expected = e.scope().equals("open") ? e.served()
                            : c.getKey().endsWith("token") ? 401
                            : c.getKey().equals(e.scope()) || e.scope().equals("any token") ? e.served() : 403;

                    // When
                    RawHttp.Answer a = RawHttp.send(sidecar.httpPort(), e.method(), e.path(), headers, e.body());

                    // Then
                    boolean ok = a.status() == expected;
                    if (expected == 401) {
                        ok &= a.header("WWW-Authenticate").startsWith("Bearer realm=\"saeguard\"");
                    }
                    if (expected >= 400) {
                        ok &= a.header("Content-Type").equals("application/json") && a.body().startsWith("{\"error\":");
                    }
                    if (!ok) {
                        wrong.add(e + " as " + c.getKey() + ": expected " + expected + ", got " + a.text().replace("\r\n", " | "));
                    }
                }
            }
            assertThat(wrong).isEmpty();
        }
    }

    @Test
    void theAlertStreamNeedsReadAndTheHealthProbesNothing(KafkaBroker kafka) throws Exception {
        Scenario s = withTokens(dir, kafka.bootstrap(), SEED, "");
        try (Sidecar sidecar = Sidecar.start(s.config())) {
            java.net.http.HttpClient client = java.net.http.HttpClient.newHttpClient();
            java.net.URI stream = java.net.URI.create("http://127.0.0.1:" + sidecar.httpPort() + "/v1/alerts/stream");

            assertThat(client.send(java.net.http.HttpRequest.newBuilder(stream).build(), java.net.http.HttpResponse.BodyHandlers.ofString())
                    .statusCode()).isEqualTo(401);
            var served = client.send(java.net.http.HttpRequest.newBuilder(stream).header("Authorization", "Bearer " + READER).build(),
                    java.net.http.HttpResponse.BodyHandlers.ofInputStream());
            assertThat(served.statusCode()).isEqualTo(200);
            assertThat(served.headers().firstValue("Content-Type")).contains("text/event-stream");
            served.body().close();
            assertThat(RawHttp.send(sidecar.httpPort(), "GET", "/health/ready", Map.of(), new byte[0]).status()).isIn(200, 503);
            RawHttp.Answer page = RawHttp.send(sidecar.httpPort(), "GET", "/", Map.of(), new byte[0]);
            assertThat(page.status()).isEqualTo(401);
            assertThat(page.text()).as("a browser is offered its login prompt").contains("WWW-Authenticate: Basic realm=\"saeguard\"");
        }
    }

    private static void openssl(Path dir, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("openssl"));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor()).as("openssl " + String.join(" ", args) + ": " + out).isZero();
    }

    private static java.net.http.HttpClient tlsClient(Path serverCert, java.util.Optional<Path> clientP12) throws Exception {
        java.security.KeyStore trust = java.security.KeyStore.getInstance("PKCS12");
        trust.load(null, null);
        try (var in = Files.newInputStream(serverCert)) {
            trust.setCertificateEntry("server", java.security.cert.CertificateFactory.getInstance("X.509").generateCertificate(in));
        }
        javax.net.ssl.TrustManagerFactory tmf = javax.net.ssl.TrustManagerFactory.getInstance(javax.net.ssl.TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        javax.net.ssl.KeyManager[] keys = null;
        if (clientP12.isPresent()) {
            java.security.KeyStore ks = java.security.KeyStore.getInstance("PKCS12");
            try (var in = Files.newInputStream(clientP12.get())) {
                ks.load(in, "test".toCharArray());
            }
            javax.net.ssl.KeyManagerFactory kmf = javax.net.ssl.KeyManagerFactory.getInstance(javax.net.ssl.KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(ks, "test".toCharArray());
            keys = kmf.getKeyManagers();
        }
        javax.net.ssl.SSLContext ssl = javax.net.ssl.SSLContext.getInstance("TLS");
        ssl.init(keys, tmf.getTrustManagers(), null);
        return java.net.http.HttpClient.newBuilder().sslContext(ssl).build();
    }

    @Test
    void tlsServesHttpsAndMutualTlsRefusesAClientWithoutACertificate(KafkaBroker kafka) throws Exception {
        // Given: a self-signed server certificate and a self-signed client certificate (its own CA), made by openssl now
        org.junit.jupiter.api.Assumptions.assumeTrue(new ProcessBuilder("openssl", "version").start().waitFor() == 0, "openssl missing");
        Path certs = Files.createDirectories(dir.resolve("certs"));
        openssl(certs, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.pem", "-days", "1", "-subj",
                "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1");
        openssl(certs, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.pem", "-days", "1", "-subj",
                "/CN=llm-server");
        openssl(certs, "pkcs12", "-export", "-in", "client.pem", "-inkey", "client.key", "-out", "client.p12", "-passout", "pass:test");
        Scenario s = withTokens(dir, kafka.bootstrap(), SEED, """
                  tls:
                    cert: certs/server.pem
                    key: certs/server.key
                    client_ca: certs/client.pem
                """);
        try (Sidecar sidecar = Sidecar.start(s.config())) {
            java.net.URI detectors = java.net.URI.create("https://127.0.0.1:" + sidecar.httpPort() + "/v1/detectors");
            java.net.http.HttpRequest get = java.net.http.HttpRequest.newBuilder(detectors).header("Authorization", "Bearer " + READER).build();

            // When / Then: a client with its certificate and a token is served
            var served = tlsClient(certs.resolve("server.pem"), java.util.Optional.of(certs.resolve("client.p12"))).send(get,
                    java.net.http.HttpResponse.BodyHandlers.ofString());
            assertThat(served.statusCode()).isEqualTo(200);
            assertThat(served.body()).contains("planted");

            // And one without a certificate does not get past the handshake, nor does plain HTTP get an answer
            org.assertj.core.api.Assertions.assertThatThrownBy(() -> tlsClient(certs.resolve("server.pem"), java.util.Optional.empty())
                    .send(get, java.net.http.HttpResponse.BodyHandlers.ofString())).isInstanceOf(java.io.IOException.class);
            org.assertj.core.api.Assertions.assertThatThrownBy(() -> RawHttp.send(sidecar.httpPort(), "GET", "/health/live", Map.of(),
                    new byte[0])).isInstanceOf(java.io.IOException.class);
        }
    }
}
