package io.saeguard.sae.hub;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.URI;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class HubSettingsTest {
    private static final Map<String, String> NO_TOKEN_FILE = Map.of("HF_TOKEN_PATH", "/nonexistent/saeguard-test/token");

    @Test
    void withNothingSetTheHubIsHuggingfaceCoOnlineAndAnonymous() {
        // When
        HubSettings s = HubSettings.fromEnvironment(NO_TOKEN_FILE);

        // Then
        assertThat(s.endpoint()).isEqualTo(URI.create("https://huggingface.co"));
        assertThat(s.token()).isEmpty();
        assertThat(s.offline()).isFalse();
        assertThat(s.cacheRoot()).isEqualTo(Path.of(System.getProperty("user.home"), ".cache", "saeguard"));
    }

    @Test
    void hfEndpointHfTokenHfHubOfflineAndSaeguardCacheAreReadAsHuggingfaceHubReadsThem() {
        // When
        HubSettings s = HubSettings.fromEnvironment(Map.of("HF_ENDPOINT", "https://mirror.example/", "HF_TOKEN", " hf_abc\n",
                "HF_HUB_OFFLINE", "yes", "SAEGUARD_CACHE", "/var/cache/sg"));

        // Then
        assertThat(s.endpoint()).isEqualTo(URI.create("https://mirror.example"));
        assertThat(s.token()).contains("hf_abc");
        assertThat(s.offline()).isTrue();
        assertThat(s.hubCache()).isEqualTo(Path.of("/var/cache/sg/hub"));
    }

    @Test
    void aCacheGivenOnTheCommandLineWinsOverSaeguardCache() {
        assertThat(HubSettings.fromEnvironment(Map.of("SAEGUARD_CACHE", "/a"), Optional.of(Path.of("/b"))).cacheRoot()).isEqualTo(Path.of("/b"));
    }

    @Test
    void offlineIsOnlyTheValuesHuggingfaceHubTakesAsTrue() {
        assertThat(HubSettings.fromEnvironment(Map.of("HF_HUB_OFFLINE", "0")).offline()).isFalse();
        assertThat(HubSettings.fromEnvironment(Map.of("TRANSFORMERS_OFFLINE", "1")).offline()).isTrue();
    }

    @Test
    void theTokenNeverAppearsInToString() {
        assertThat(HubSettings.fromEnvironment(Map.of("HF_TOKEN", "hf_secret_value")).toString()).doesNotContain("hf_secret_value")
                .contains("token=(set)");
    }

    @Test
    void pathsArePercentEncodedAsPythonsQuote() {
        assertThat(HubClient.encode("layer_20/width_16k/a b:v1", true)).isEqualTo("layer_20/width_16k/a%20b%3Av1");
        assertThat(HubClient.encode("refs/pr/1", false)).isEqualTo("refs%2Fpr%2F1");
    }
}
