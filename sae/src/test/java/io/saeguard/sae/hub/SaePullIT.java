package io.saeguard.sae.hub;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.saeguard.sae.Sae;
import io.saeguard.sae.format.SaeLoader;
import io.saeguard.sae.testing.FakeHub;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link SaePuller} against {@link FakeHub}, a local server with the hub's layout: an SAE named by SAELens release
 * and id is fetched (the weights through a redirect to a second host, as LFS files are), checked, cached, and loads
 * with {@link SaeLoader}.
 */
class SaePullIT {
    /** A release of the shipped table whose SAEs are in SAELens's own format. */
    private static final String RELEASE = "gpt2-small-res-jb";
    private static final String SAE_ID = "blocks.0.hook_resid_pre";
    private static final String REPO = "jbloom/GPT2-Small-SAEs-Reformatted";
    private static final String WEIGHTS = SAE_ID + "/sae_weights.safetensors";
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;
    private FakeHub hub;

    @BeforeEach
    void serveATinySae() throws IOException {
        hub = new FakeHub();
        hub.saeLensSae(REPO, SAE_ID, tmp.resolve("written"), Optional.empty());
        hub.file(REPO, "README.md", "not part of any SAE".getBytes(), false);
    }

    @AfterEach
    void stop() {
        hub.close();
    }

    @Test
    void anSaeNamedByReleaseIsDownloadedAndLoadsWithTheSaeModule() throws Exception {
        // Given
        SaePuller puller = puller(Map.of());

        // When
        SaePuller.Pulled pulled = puller.pull(sae(RELEASE, SAE_ID), "main", false);

        // Then
        Sae sae = SaeLoader.load(pulled.directory());
        assertThat(sae.config().dIn()).isEqualTo(8);
        assertThat(sae.config().dSae()).isEqualTo(32);
        assertThat(pulled.downloaded()).isTrue();
        assertThat(pulled.directory()).isEqualTo(tmp.resolve("cache/hub/models--jbloom--GPT2-Small-SAEs-Reformatted/snapshots")
                .resolve(hub.commit()).resolve(SAE_ID));
        assertThat(Files.readString(tmp.resolve("cache/hub/models--jbloom--GPT2-Small-SAEs-Reformatted/refs/main"))).isEqualTo(hub.commit());
        assertThat(pulled.directory().resolve("sparsity.safetensors")).exists();
    }

    @Test
    void aSecondPullIsServedFromTheCacheWithoutAnyRequest() throws Exception {
        // Given
        SaePuller puller = puller(Map.of());
        Path first = puller.pull(sae(RELEASE, SAE_ID), "main", false).directory();
        hub.clearRequests();

        // When
        SaePuller.Pulled again = puller.pull(sae(RELEASE, SAE_ID), "main", false);

        // Then
        assertThat(again.directory()).isEqualTo(first);
        assertThat(again.downloaded()).isFalse();
        assertThat(hub.requests()).isEmpty();
    }

    @Test
    void theTokenGoesToTheHubButNotToTheCdnHost() throws Exception {
        // Given
        hub.requireToken("hf_secret");
        SaePuller puller = puller(Map.of("HF_TOKEN", "hf_secret"));

        // When
        puller.pull(sae(RELEASE, SAE_ID), "main", false);

        // Then
        assertThat(hub.requests()).filteredOn(r -> r.server().equals("hub")).isNotEmpty()
                .allSatisfy(r -> assertThat(r.authorization()).contains("Bearer hf_secret"));
        assertThat(hub.requests()).filteredOn(r -> r.server().equals("cdn")).isNotEmpty()
                .allSatisfy(r -> assertThat(r.authorization()).isEmpty());
    }

    @Test
    void aGatedRepositoryWithoutATokenIsAnErrorThatSaysToSetHfToken() {
        // Given
        hub.requireToken("hf_secret");
        SaePuller puller = puller(Map.of());

        // When / Then
        assertThatThrownBy(() -> puller.pull(sae(RELEASE, SAE_ID), "main", false)).isInstanceOf(SaeSourceException.class)
                .hasMessageContaining(hub.endpoint() + "/api/models/" + REPO + "/revision/main").hasMessageContaining("401")
                .hasMessageContaining("HF_TOKEN");
    }

    @Test
    void aDownloadCutShortResumesFromItsPartFileWithARangeRequest() throws Exception {
        // Given
        hub.breakOnce(WEIGHTS, 300);
        SaePuller puller = puller(Map.of());
        assertThatThrownBy(() -> puller.pull(sae(RELEASE, SAE_ID), "main", false)).isInstanceOf(SaeSourceException.class)
                .hasMessageContaining("resume");
        Path part = snapshot().resolve(WEIGHTS + ".part");
        assertThat(part).hasSize(300);
        hub.clearRequests();

        // When
        SaePuller.Pulled pulled = puller.pull(sae(RELEASE, SAE_ID), "main", false);

        // Then
        assertThat(hub.requests()).filteredOn(r -> r.server().equals("cdn") && r.path().contains("sae_weights")).singleElement()
                .satisfies(r -> assertThat(r.range()).contains("bytes=300-"));
        assertThat(part).doesNotExist();
        assertThat(SaeLoader.load(pulled.directory()).config().dSae()).isEqualTo(32);
    }

    @Test
    void bytesThatDoNotMatchTheHubsHashAreAnErrorAndLeaveNoFileInTheCache() throws Exception {
        // Given
        hub.corrupt(WEIGHTS);
        SaePuller puller = puller(Map.of());

        // When / Then
        assertThatThrownBy(() -> puller.pull(sae(RELEASE, SAE_ID), "main", false)).isInstanceOf(SaeSourceException.class)
                .hasMessageContaining("SHA-256").hasMessageContaining("deleted");
        try (Stream<Path> files = Files.walk(snapshot())) {
            assertThat(files.filter(p -> p.getFileName().toString().startsWith("sae_weights"))).isEmpty();
        }
        assertThat(snapshot().resolve(SAE_ID).resolve(SaePuller.MANIFEST)).doesNotExist();
    }

    @Test
    void offlineAnSaeMissingFromTheCacheIsAnErrorNamingTheUrlItNeeded() {
        // Given
        SaePuller puller = puller(Map.of("HF_HUB_OFFLINE", "1"));

        // When / Then
        assertThatThrownBy(() -> puller.pull(sae(RELEASE, SAE_ID), "main", false)).isInstanceOf(SaeSourceException.class)
                .hasMessageContaining("HF_HUB_OFFLINE").hasMessageContaining(hub.endpoint() + "/api/models/" + REPO + "/revision/main");
        assertThat(hub.requests()).isEmpty();
    }

    @Test
    void offlineAnSaeInTheCacheLoadsWithoutAnyRequest() throws Exception {
        // Given
        Path online = puller(Map.of()).pull(sae(RELEASE, SAE_ID), "main", false).directory();
        hub.clearRequests();

        // When
        SaePuller.Pulled offline = puller(Map.of("HF_HUB_OFFLINE", "1")).pull(sae(RELEASE, SAE_ID), "main", true);

        // Then
        assertThat(offline.directory()).isEqualTo(online);
        assertThat(hub.requests()).isEmpty();
    }

    @Test
    void anUnreachableHubIsAnErrorNamingTheUrl() throws Exception {
        // Given
        int closed;
        try (ServerSocket s = new ServerSocket(0)) {
            closed = s.getLocalPort();
        }
        SaePuller puller = new SaePuller(HubSettings.fromEnvironment(Map.of("HF_ENDPOINT", "http://127.0.0.1:" + closed),
                Optional.of(tmp.resolve("cache"))), SaePuller.NONE);

        // When / Then
        assertThatThrownBy(() -> puller.pull(sae(RELEASE, SAE_ID), "main", false)).isInstanceOf(SaeSourceException.class)
                .hasMessageContaining("cannot reach http://127.0.0.1:" + closed + "/api/models/" + REPO + "/revision/main");
    }

    @Test
    void aNormScalingFactorFromTheTableIsWrittenIntoCfgJsonSoTheSaeLoads() throws Exception {
        // Given: a release whose table entry carries the factor its cfg.json lacks
        PretrainedSae sae = sae("gpt2-small-mlp-tm", "blocks.0.hook_mlp_out");
        hub.saeLensSae(sae.repoId(), sae.path(), tmp.resolve("tm"), Optional.of("expected_average_only_in"));

        // When
        Path dir = puller(Map.of()).pull(sae, "main", false).directory();

        // Then
        assertThat(JSON.readTree(dir.resolve("cfg.json").toFile()).path("norm_scaling_factor").asDouble())
                .isEqualTo(sae.normScalingFactor().getAsDouble());
        assertThat(dir.resolve(SaePuller.HUB_CFG)).exists();
        assertThat(SaeLoader.load(dir).config().inputScale()).isNotEqualTo(1.0);
    }

    @Test
    void aReleaseInAFormatSaeguardCannotLoadIsRefusedNamingTheFormat() {
        // Given
        SaePuller puller = puller(Map.of());

        // When / Then
        assertThatThrownBy(() -> puller.pull(sae("sae_bench_pythia70m_sweep_topk_ctx128_0730",
                SaeReleases.bundled().saeIds("sae_bench_pythia70m_sweep_topk_ctx128_0730").get(0)), "main", false))
                .isInstanceOf(SaeSourceException.class).hasMessageContaining("dictionary_learning_1").hasMessageContaining("ae.pt")
                .hasMessageContaining("sae_lens (SAELens cfg.json + sae_weights.safetensors)");
        assertThat(hub.requests()).isEmpty();
    }

    private SaePuller puller(Map<String, String> env) {
        Map<String, String> all = new HashMap<>(env);
        all.putIfAbsent("HF_ENDPOINT", hub.endpoint().toString());
        all.putIfAbsent("HF_TOKEN_PATH", tmp.resolve("no-token").toString());
        return new SaePuller(HubSettings.fromEnvironment(all, Optional.of(tmp.resolve("cache"))), SaePuller.NONE);
    }

    private Path snapshot() {
        return tmp.resolve("cache/hub/models--jbloom--GPT2-Small-SAEs-Reformatted/snapshots").resolve(hub.commit());
    }

    private static PretrainedSae sae(String release, String id) throws SaeSourceException {
        return SaeReleases.bundled().find(release, id);
    }
}
