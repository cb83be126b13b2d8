package io.saeguard.sidecar.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.saeguard.sae.format.SaeLoader;
import io.saeguard.sae.testing.FakeHub;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code saeguard sae pull} as a user runs it (the fat jar in its own JVM) against a local server with the hub's layout. */
class SaePullCommandIT {
    private static final String REPO = "jbloom/GPT2-Small-SAEs-Reformatted";
    private static final String SAE_ID = "blocks.0.hook_resid_pre";

    @TempDir
    Path dir;
    private FakeHub hub;

    @BeforeEach
    void serveATinySae() throws Exception {
        hub = new FakeHub().saeLensSae(REPO, SAE_ID, dir.resolve("written"), Optional.empty());
    }

    @AfterEach
    void stop() {
        hub.close();
    }

    @Test
    void pullPrintsTheLocalDirectoryAsItsLastStdoutLineAndProgressOnStderr() throws Exception {
        // When
        Run r = saeguard(Map.of("HF_ENDPOINT", hub.endpoint().toString()), "sae", "pull", "gpt2-small-res-jb", SAE_ID, "--cache",
                dir.resolve("cache").toString());

        // Then
        assertThat(r.code()).as(r.err()).isZero();
        List<String> lines = r.out().lines().toList();
        Path pulled = Path.of(lines.get(lines.size() - 1));
        assertThat(pulled).startsWith(dir.resolve("cache/hub/models--jbloom--GPT2-Small-SAEs-Reformatted/snapshots"));
        assertThat(SaeLoader.load(pulled).config().dSae()).isEqualTo(32);
        assertThat(r.err()).contains("sae_weights.safetensors").contains(hub.endpoint() + "/" + REPO + "/resolve/").contains("100%");
    }

    @Test
    void offlineWithAnEmptyCachePullFailsWithOneLineNamingTheUrl() throws Exception {
        // When
        Run r = saeguard(Map.of("HF_ENDPOINT", hub.endpoint().toString(), "HF_HUB_OFFLINE", "1"), "sae", "pull", "gpt2-small-res-jb",
                SAE_ID, "--cache", dir.resolve("cache").toString());

        // Then
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.out()).isEmpty();
        assertThat(r.err()).contains("saeguard sae pull: error: ").contains(hub.endpoint() + "/api/models/" + REPO + "/revision/main");
        assertThat(hub.requests()).isEmpty();
    }

    record Run(int code, String out, String err) {
    }

    private Run saeguard(Map<String, String> env, String... args) throws Exception {
        Path jar = Path.of(System.getProperty("saeguard.jar", "target/saeguard.jar"));
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-jar",
                jar.toString()));
        cmd.addAll(List.of(args));
        Path err = Files.createTempFile(dir, "stderr", ".txt");
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectError(err.toFile());
        pb.environment().keySet().removeIf(k -> k.startsWith("HF_") || k.equals("SAEGUARD_CACHE"));
        pb.environment().put("HF_TOKEN_PATH", dir.resolve("no-token").toString());
        pb.environment().putAll(env);
        Process p = pb.start();
        String out;
        try (InputStream in = p.getInputStream()) {
            out = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        assertThat(p.waitFor(120, TimeUnit.SECONDS)).isTrue();
        return new Run(p.exitValue(), out, Files.readString(err));
    }
}
