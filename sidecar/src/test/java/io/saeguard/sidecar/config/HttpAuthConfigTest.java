package io.saeguard.sidecar.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HttpAuthConfigTest {
    private static final String READER = "r".repeat(40);
    private static final String ADMIN = "a".repeat(40);

    @TempDir
    Path dir;

    private SidecarConfig load(String yaml, Map<String, String> env) throws Exception {
        Path f = dir.resolve("saeguard.yaml");
        Files.writeString(f, yaml);
        return ConfigLoader.load(Optional.of(f), env);
    }

    @Test
    void withoutTokensTheApiBindsTheLoopbackAddressOnly() throws Exception {
        SidecarConfig c = load("http:\n  port: 8080\n", Map.of());

        assertThat(c.http().host()).isEqualTo("127.0.0.1");
        assertThat(c.http().auth().required()).isFalse();
    }

    @Test
    void bindingAnotherAddressWithoutTokensIsRefusedNamingBothWaysOut() {
        assertThatThrownBy(() -> load("http:\n  host: 0.0.0.0\n", Map.of())).isInstanceOf(ConfigException.class)
                .hasMessageContaining("'http.host' is 0.0.0.0 but 'http.auth.tokens' is empty").hasMessageContaining("http.auth.mode: none");
        assertThatThrownBy(() -> load("http:\n  port: 1\n", Map.of("SAEGUARD_HTTP_HOST", "10.0.0.1")))
                .hasMessageStartingWith("environment variable SAEGUARD_HTTP_HOST:");
    }

    @Test
    void modeNoneBindsAnyAddressWithoutTokens() throws Exception {
        SidecarConfig c = load("http:\n  auth:\n    mode: none\n", Map.of());

        assertThat(c.http().host()).isEqualTo("0.0.0.0");
        assertThat(c.http().auth().required()).isFalse();
        assertThat(load("http:\n  host: 0.0.0.0\n", Map.of("SAEGUARD_HTTP_AUTH_MODE", "none")).http().host()).isEqualTo("0.0.0.0");
    }

    @Test
    void tokensComeFromTheEnvironmentAndFilesAndKeepOnlyTheirDigest() throws Exception {
        Files.writeString(dir.resolve("admin.token"), ADMIN + "\n");

        SidecarConfig c = load("""
                http:
                  auth:
                    tokens:
                      - {name: dashboards, token_env: READ_TOKEN, scopes: [read]}
                      - {name: ops, token_file: admin.token, scopes: [read, admin, review]}
                """, Map.of("READ_TOKEN", READER));

        assertThat(c.http().host()).isEqualTo("0.0.0.0");
        assertThat(c.http().auth().required()).isTrue();
        assertThat(c.http().auth().metricsOpen()).as("metrics need read by default").isFalse();
        assertThat(c.http().auth().tokens()).extracting(SidecarConfig.Token::name).containsExactly("dashboards", "ops");
        assertThat(c.http().auth().tokens().get(1).sha256()).isEqualTo(ConfigLoader.sha256(ADMIN));
        assertThat(c.http().auth().tokens().get(1).scopes()).containsExactlyInAnyOrder(SidecarConfig.Scope.READ, SidecarConfig.Scope.ADMIN,
                SidecarConfig.Scope.REVIEW);
        assertThat(c.toString()).doesNotContain(READER).doesNotContain(ADMIN).contains("dashboards");
    }

    @Test
    void aPlaceholderOrShortTokenIsRefused() {
        assertThatThrownBy(() -> load("http:\n  auth:\n    tokens:\n      - {name: x, token_env: T, scopes: [read]}\n",
                Map.of("T", "REPLACE_ME"))).hasMessageContaining("shorter than 32 characters").hasMessageContaining("openssl rand -hex 32")
                .hasMessageNotContaining("REPLACE_ME");
    }

    @Test
    void eachTokenNeedsOneSourceKnownScopesAndItsOwnName() {
        assertThatThrownBy(() -> load("http:\n  auth:\n    tokens:\n      - {name: x, scopes: [read]}\n", Map.of()))
                .hasMessageContaining("exactly one of token_env");
        assertThatThrownBy(() -> load("http:\n  auth:\n    tokens:\n      - {name: x, token_env: T, scopes: [write]}\n", Map.of("T", READER)))
                .hasMessageContaining("'http.auth.tokens[0].scopes' holds 'write': scopes are read, admin, review");
        assertThatThrownBy(() -> load("http:\n  auth:\n    tokens:\n      - {name: x, token_env: MISSING, scopes: [read]}\n", Map.of()))
                .hasMessageContaining("names MISSING, which is not set");
        assertThatThrownBy(() -> load("""
                http:
                  auth:
                    tokens:
                      - {name: x, token_env: T, scopes: [read]}
                      - {name: x, token_env: U, scopes: [admin]}
                """, Map.of("T", READER, "U", ADMIN))).hasMessageContaining("token name 'x' appears twice");
        assertThatThrownBy(() -> load("http:\n  auth:\n    tokens:\n      - {name: x, token_file: nope, scopes: [read]}\n", Map.of()))
                .hasMessageContaining("cannot be read");
    }

    @Test
    void modeNoneWithTokensAndUnknownValuesAreRefused() {
        assertThatThrownBy(() -> load("http:\n  auth:\n    mode: none\n    tokens:\n      - {name: x, token_env: T, scopes: [read]}\n",
                Map.of("T", READER))).hasMessageContaining("'http.auth.mode' is none but 'http.auth.tokens' lists 1 token(s)");
        assertThatThrownBy(() -> load("http:\n  auth:\n    mode: maybe\n", Map.of())).hasMessageContaining("must be tokens or none");
        assertThatThrownBy(() -> load("http:\n  auth:\n    metrics: public\n", Map.of())).hasMessageContaining("must be open");
        assertThatThrownBy(() -> load("http:\n  auth:\n    token: x\n", Map.of())).hasMessageContaining("unknown key 'http.auth.token'");
    }

    @Test
    void tlsNeedsReadableCertificateAndKey() throws Exception {
        Files.writeString(dir.resolve("c.pem"), "x");
        Files.writeString(dir.resolve("k.pem"), "x");

        assertThat(load("http:\n  tls:\n    cert: c.pem\n    key: k.pem\n", Map.of()).http().tls()).hasValueSatisfying(t -> {
            assertThat(t.cert()).isEqualTo(dir.resolve("c.pem"));
            assertThat(t.clientCa()).isEmpty();
        });
        assertThatThrownBy(() -> load("http:\n  tls:\n    cert: c.pem\n", Map.of())).hasMessageContaining("'http.tls.key' is required");
        assertThatThrownBy(() -> load("http:\n  tls:\n    cert: c.pem\n    key: k.pem\n    client_ca: ca.pem\n", Map.of()))
                .hasMessageContaining("'http.tls.client_ca' names").hasMessageContaining("not a readable file");
    }
}
