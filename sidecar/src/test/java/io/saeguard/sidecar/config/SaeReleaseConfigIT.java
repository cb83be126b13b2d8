package io.saeguard.sidecar.config;

import static org.assertj.core.api.Assertions.assertThat;

import io.saeguard.sae.format.SaeLoader;
import io.saeguard.sae.testing.FakeHub;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code saes[].release} + {@code sae_id}: the config names an SAE as SAELens does and gets a loadable directory. */
class SaeReleaseConfigIT {
    @TempDir
    Path dir;

    @Test
    void anSaeNamedByReleaseIsDownloadedAtLoadAndThenServedFromTheCache() throws Exception {
        try (FakeHub hub = new FakeHub().saeLensSae("jbloom/GPT2-Small-SAEs-Reformatted", "blocks.0.hook_resid_pre", dir.resolve("w"),
                Optional.empty())) {
            // Given
            Path f = dir.resolve("saeguard.yaml");
            Files.writeString(f, """
                    saes:
                      - id: gpt2-l0
                        release: gpt2-small-res-jb
                        sae_id: blocks.0.hook_resid_pre
                        model: gpt2-small
                        hook: blocks.0.hook_resid_pre
                    """);
            Map<String, String> env = Map.of("HF_ENDPOINT", hub.endpoint().toString(), "SAEGUARD_CACHE", dir.resolve("cache").toString(),
                    "HF_TOKEN_PATH", dir.resolve("no-token").toString());

            // When
            SidecarConfig first = ConfigLoader.load(Optional.of(f), env);
            hub.clearRequests();
            SidecarConfig second = ConfigLoader.load(Optional.of(f), env);

            // Then
            Path sae = first.saes().get(0).path();
            assertThat(sae).startsWith(dir.resolve("cache/hub/models--jbloom--GPT2-Small-SAEs-Reformatted/snapshots"));
            assertThat(SaeLoader.load(sae).config().dIn()).isEqualTo(8);
            assertThat(second.saes().get(0).path()).isEqualTo(sae);
            assertThat(hub.requests()).isEmpty();
        }
    }
}
