package io.saeguard.sidecar.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.saeguard.sidecar.testing.SaeguardJar;
import io.saeguard.topics.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code inspect}, {@code encode} and {@code select} as a user runs them (the fat jar in its own JVM) on the
 * demo's SAE, a SAELens folder with {@code sparsity.safetensors}: no Python needed.
 */
class DemoSaeCommandsIT {
    private static final List<String> SAE_FILES = List.of("cfg.json", "sae_weights.safetensors", "sparsity.safetensors");
    private static final int D_IN = 384;

    @TempDir
    Path dir;

    Path sae;

    @BeforeEach
    void copyTheDemoSae() throws IOException {
        sae = Files.createDirectories(dir.resolve("sae"));
        for (String name : SAE_FILES) {
            try (InputStream in = DemoCommand.class.getResourceAsStream(DemoCommand.RESOURCES + name)) {
                assertThat(in).as("demo resource %s", name).isNotNull();
                Files.copy(in, sae.resolve(name));
            }
        }
    }

    @Test
    void inspectListsSparsitySafetensorsAndCountsItInTheWeightsChecksum() throws Exception {
        // Given the demo SAE folder: cfg.json, sae_weights.safetensors and sparsity.safetensors

        // When inspected
        SaeguardJar.Completed run = SaeguardJar.run(dir, dir.resolve("inspect.log"), "inspect", "--sae", sae.toString());

        // Then its files are all three, in order, and weights_sha256 is over all three
        assertThat(run.exitCode()).as(run.output()).isZero();
        // stdout and stderr come together: the indented JSON starts at a line that is just "{"
        String output = "\n" + run.output();
        JsonNode json = new ObjectMapper().readTree(output.substring(output.indexOf("\n{\n") + 1));
        List<String> files = new ArrayList<>();
        json.get("files").forEach(f -> files.add(Path.of(f.get("path").asText()).getFileName().toString()));
        assertThat(files).containsExactlyElementsOf(SAE_FILES);
        MessageDigest all = MessageDigest.getInstance("SHA-256");
        for (String name : SAE_FILES) {
            all.update(Files.readAllBytes(sae.resolve(name)));
        }
        assertThat(json.get("weights_sha256").asText()).isEqualTo(HexFormat.of().formatHex(all.digest()));
    }

    @Test
    void encodePrintsSaeguardsEngineLineButNoDjlInfoLines() throws Exception {
        // Given a few tokens of activations
        Path input = activations(dir.resolve("in.safetensors"), 4, false);

        // When encoded
        SaeguardJar.Completed run = SaeguardJar.run(dir, dir.resolve("encode.log"), "encode", "--sae", sae.toString(),
                "--input", input.toString(), "--output", dir.resolve("out.safetensors").toString(), "--threads", "1");

        // Then the output has saeguard's own engine line and the result, and none of DJL's INFO lines
        // (a.d.u.Platform, a.d.p.j.LibUtils "Extracting ...", a.d.p.e.PtEngine thread counts)
        assertThat(run.exitCode()).as(run.output()).isZero();
        assertThat(run.output()).contains("SAE engine started").contains("encoded 4 tokens");
        assertThat(run.output().lines().filter(l -> l.matches(".* INFO +\\[[^]]*] a\\.d\\..*"))).as(run.output()).isEmpty();
    }

    @Test
    void selectWithTheDefaultDsgRuleAndNoRequestTensorFailsNamingTheFileAndTheTwoWaysOut() throws Exception {
        // Given positive activations without 'request', negatives with it
        Path positive = activations(dir.resolve("pos.safetensors"), 8, false);
        Path negative = activations(dir.resolve("neg.safetensors"), 8, true);

        // When select runs with the default rule (dsg)
        SaeguardJar.Completed run = SaeguardJar.run(dir, dir.resolve("select.log"), "select", "--sae", sae.toString(),
                "--positive", positive.toString(), "--negative", negative.toString(), "--out", dir.resolve("d.yaml").toString());

        // Then it fails before loading anything, naming the option, the file, the missing tensor and both fixes
        assertThat(run.exitCode()).as(run.output()).isEqualTo(1);
        assertThat(run.output()).contains("saeguard select: error: --positive " + positive + ": no tensor 'request'")
                .contains("add it").contains("--rule features").doesNotContain("SAE engine started");
        assertThat(dir.resolve("d.yaml")).doesNotExist();
    }

    /** {@code tokens} random activations of the demo SAE's width; with {@code request}, two tokens per example. */
    private static Path activations(Path file, int tokens, boolean request) throws IOException {
        Random random = new Random(tokens);
        float[] x = new float[tokens * D_IN];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) random.nextGaussian();
        }
        SafetensorsWriter w = new SafetensorsWriter().addF32("activations", new long[] {tokens, D_IN}, x);
        if (request) {
            int[] ids = new int[tokens];
            for (int t = 0; t < tokens; t++) {
                ids[t] = t / 2;
            }
            w.addI32("request", new long[] {tokens}, ids);
        }
        w.writeTo(file);
        return file;
    }
}
