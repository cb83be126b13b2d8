package io.saeguard.sidecar.pipeline;

import io.saeguard.sidecar.app.Sidecar;
import static org.assertj.core.api.Assertions.assertThat;

import io.saeguard.detectors.DetectorDefinition;
import io.saeguard.detectors.DetectorDefinitions;
import io.saeguard.detectors.rules.FeaturesConfig;
import io.saeguard.sae.PythonSaeFixtures;
import io.saeguard.sae.TestSeed;
import io.saeguard.sidecar.config.ConfigLoader;
import io.saeguard.sidecar.kafka.TopicAdmin;
import io.saeguard.sidecar.testing.KafkaBroker;
import io.saeguard.sidecar.testing.KafkaBrokerExtension;
import io.saeguard.topics.activation.ActivationCodec;
import io.saeguard.topics.catalog.TopicCatalog;
import io.saeguard.topics.catalog.TopicRole;
import io.saeguard.topics.events.Decision;
import io.saeguard.topics.events.EventCodec;
import io.saeguard.topics.events.Phase;
import io.saeguard.topics.safetensors.DType;
import io.saeguard.topics.safetensors.SafetensorsFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The sidecar issue's minimal config file, as written (only the broker address, the SAE's path and the HTTP port
 * differ: a test broker, a generated Gemma Scope {@code params.npz} of the 16k width, port 0), with the shipped
 * {@code detectors/catalog/toxicity.yaml}: the sidecar starts on it, publishes the pack's steering directions and
 * decides a record routed by model and hook as the pack's rule says on the reference codes.
 */
@ExtendWith(KafkaBrokerExtension.class)
class MinimalConfigIT {
    private static final long SEED = TestSeed.draw("MinimalConfigIT");
    private static final EventCodec CODEC = new EventCodec();
    private static final Path TOXICITY = Path.of("..", "detectors", "catalog", "toxicity.yaml").toAbsolutePath().normalize();

    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        PythonSaeFixtures.assumeAvailable();
    }

    @Test
    void theIssuesMinimalFileRunsWithTheToxicityPack(KafkaBroker kafka) throws Exception {
        // Given a Gemma Scope SAE of the pack's width (d_sae 16384; d_in kept small) and the default topics
        Path c = PythonSaeFixtures.generate(dir.resolve("gs"), SEED, "--format", "gemma-scope", "--d-in", "32", "--d-sae", "16384",
                "--tokens", "16");
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrap()))) {
            TopicAdmin.createAll(admin, TopicCatalog.bundled());
        }
        String group = "saeguard-" + UUID.randomUUID().toString().substring(0, 8); // the file says saeguard; a fresh group per run
        Path config = dir.resolve("saeguard.yaml");
        Files.writeString(config, """
                kafka:
                  bootstrap: %s     # absent → embedded broker, topics created
                  group: %s
                saes:
                  - id: gemma-2b-l20-16k
                    path: %s
                    model: gemma-2-2b
                    hook: blocks.20.hook_resid_post
                detectors:
                  - %s
                # the pack is marked 'status: unverified' (cited Gemma Scope features, thresholds never measured here)
                allow_unverified_detectors: true
                http:
                  port: 0
                """.formatted(kafka.bootstrap(), group, c.resolve("sae"), TOXICITY));
        float[] x = SafetensorsFile.open(c.resolve("input.safetensors")).tensor("activations").orElseThrow().toFloatArray();
        float[] codes = SafetensorsFile.open(c.resolve("expected.safetensors")).tensor("features").orElseThrow().toFloatArray();
        int tokens = 16;
        int dSae = 16384;
        String request = "minimal-" + UUID.randomUUID();

        // The file says nothing of the engine (device auto, a thread per core); DJL is configured once per JVM and the other
        // ITs in this one run it on the CPU with one thread, so the environment overrides say the same (the file stays as written)
        Map<String, String> env = Map.of("SAEGUARD_ENGINE_DEVICE", "cpu", "SAEGUARD_ENGINE_THREADS", "1");
        try (Sidecar sidecar = Sidecar.start(ConfigLoader.load(Optional.of(config), env))) {
            // When one record of the served model and hook arrives (no sae id: routed by model + hook)
            try (KafkaProducer<String, byte[]> p = new KafkaProducer<>(Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrap()),
                    new StringSerializer(), new ByteArraySerializer())) {
                p.send(new ProducerRecord<>("saeguard.activations", request, ActivationCodec.builder(request).model("gemma-2-2b")
                        .hook("blocks.20.hook_resid_post").position(0).phase(Phase.PROMPT).isFinal(true)
                        .activations(DType.F32, tokens, 32, x).encode())).get();
            }

            // Then its decision is the pack's rule on the reference codes: max over tokens 1.. of a_f / threshold_f
            DetectorDefinition pack = DetectorDefinitions.load(TOXICITY);
            FeaturesConfig rule = (FeaturesConfig) pack.rule();
            double score = 0;
            for (int t = 1; t < tokens; t++) { // position 0 (BOS) never counts
                for (FeaturesConfig.Feature f : rule.features()) {
                    score = Math.max(score, codes[t * dSae + f.id()] / f.threshold().getAsDouble());
                }
            }
            String expected = score >= 3.0 ? "block" : score >= 1.5 ? "steer" : score >= 1.0 ? "flag" : "allow";
            Decision d = CODEC.decodeDecision(Scenario.awaitKey(kafka.bootstrap(), "saeguard.decisions", request).value());
            System.out.printf("MinimalConfigIT: toxicity score %.4f on the reference codes -> %s%n", score, expected);
            if (Math.abs(score - 1.0) > 1e-4 && Math.abs(score - 1.5) > 1e-4 && Math.abs(score - 3.0) > 1e-4) {
                assertThat(d.action().wireName()).isEqualTo(expected);
            }
            assertThat(d.requestId()).isEqualTo(request);

            // And a record built to fire feature 13324 (its rows push that feature's pre-activation to 16 = 2 x its threshold
            // of 8: the steer band) is decided as numpy's JumpReLU on the npz's own weights says
            Crafted crafted = craft(c.resolve("sae/params.npz"), rule);
            String steered = "steered-" + UUID.randomUUID();
            try (KafkaProducer<String, byte[]> p = new KafkaProducer<>(Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrap()),
                    new StringSerializer(), new ByteArraySerializer())) {
                p.send(new ProducerRecord<>("saeguard.activations", steered, ActivationCodec.builder(steered).model("gemma-2-2b")
                        .hook("blocks.20.hook_resid_post").position(0).phase(Phase.PROMPT).isFinal(true)
                        .activations(DType.F32, crafted.tokens(), 32, crafted.x()).encode())).get();
            }
            Decision s = CODEC.decodeDecision(Scenario.awaitKey(kafka.bootstrap(), "saeguard.decisions", steered).value());
            String want = crafted.score() >= 3.0 ? "block" : crafted.score() >= 1.5 ? "steer" : crafted.score() >= 1.0 ? "flag" : "allow";
            System.out.printf("MinimalConfigIT: crafted record scores %.4f -> %s%n", crafted.score(), want);
            assertThat(want).as("the crafted record reaches a band").isNotEqualTo("allow");
            assertThat(s.action().wireName()).isEqualTo(want);
            assertThat(s.score().orElseThrow()).isCloseTo(crafted.score(), org.assertj.core.data.Offset.offset(1e-3 * crafted.score()));
            if (want.equals("steer")) {
                assertThat(s.vector().orElseThrow().id()).startsWith("gemma-2b-l20-16k/");
                assertThat(s.vector().orElseThrow().coefficient()).isEqualTo(-8.0);
            }

            // And the pack's steer band published the unit decoder rows of its five features
            Set<String> ids = rule.features().stream().map(f -> "gemma-2b-l20-16k/" + f.id()).collect(Collectors.toCollection(TreeSet::new));
            Map<String, byte[]> registry = new HashMap<>();
            for (ConsumerRecord<String, byte[]> r : Scenario.readToEnd(kafka.bootstrap(), "saeguard.steering")) {
                registry.put(r.key(), r.value());
            }
            assertThat(registry.keySet()).containsAll(ids);
            assertThat(sidecar.ready()).isTrue();
        }
    }

    /** Rows to send, and the pack's score on them (tokens 1.., max over its features of a_f / threshold_f). */
    private record Crafted(float[] x, int tokens, double score) {
    }

    /**
     * numpy, from the npz file itself: token 0 random, tokens 1..3 = 16 W_enc[:, 13324] / |W_enc[:, 13324]|^2 minus the
     * part b_enc gives, so 13324's pre-activation is 16; then Gemma Scope's JumpReLU (z = x W_enc + b_enc, kept where
     * z > threshold) for the pack's features, and the score.
     */
    private static Crafted craft(Path npz, FeaturesConfig rule) throws Exception {
        String ids = rule.features().stream().map(f -> Integer.toString(f.id())).collect(Collectors.joining(","));
        String thresholds = rule.features().stream().map(f -> Double.toString(f.threshold().getAsDouble())).collect(Collectors.joining(","));
        String script = String.join("\n",
                "import json, sys, numpy as np",
                "p = np.load(sys.argv[1]); w, b, th = p['W_enc'].astype(np.float64), p['b_enc'].astype(np.float64), p['threshold'].astype(np.float64)",
                "ids = [" + ids + "]; thr = [" + thresholds + "]",
                "col = w[:, 13324]; x = np.random.default_rng(" + SEED + ").normal(size=(4, w.shape[0]))",
                "x[1:] = ((16.0 - b[13324]) / (col @ col)) * col",
                "x = x.astype(np.float32).astype(np.float64)",
                "z = x @ w[:, ids] + b[ids]; a = np.where(z > th[ids], z, 0.0)",
                "score = max(float(a[t, j] / thr[j]) for t in range(1, 4) for j in range(len(ids)))",
                "print(json.dumps({'x': x.ravel().tolist(), 'score': score}))");
        Process p = new ProcessBuilder(PythonSaeFixtures.interpreter(), "-c", script, npz.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        assertThat(p.waitFor(2, java.util.concurrent.TimeUnit.MINUTES)).isTrue();
        assertThat(p.exitValue()).as(out).isZero();
        com.fasterxml.jackson.databind.JsonNode j = new com.fasterxml.jackson.databind.ObjectMapper().readTree(out);
        float[] x = new float[j.get("x").size()];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) j.get("x").get(i).asDouble();
        }
        return new Crafted(x, 4, j.get("score").asDouble());
    }
}
