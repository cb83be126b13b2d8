package io.saeguard.sidecar.pipeline;

import io.saeguard.sidecar.app.Sidecar;
import static org.assertj.core.api.Assertions.assertThat;

import io.saeguard.sae.PythonSaeFixtures;
import io.saeguard.sae.lm.HiddenStateModel;
import io.saeguard.sidecar.config.ConfigLoader;
import io.saeguard.sidecar.testing.KafkaBroker;
import io.saeguard.sidecar.testing.KafkaBrokerExtension;
import io.saeguard.sidecar.testing.PromptReference;
import io.saeguard.topics.catalog.TopicCatalog;
import io.saeguard.topics.catalog.TopicRole;
import io.saeguard.topics.events.Alert;
import io.saeguard.topics.events.Decision;
import io.saeguard.topics.events.EventCodec;
import io.saeguard.topics.events.PromptEvent;
import io.saeguard.topics.safetensors.SafetensorsFile;
import io.saeguard.topics.safetensors.SafetensorsWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.utils.Utils;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Prompt events end to end: text on {@code saeguard.prompts} → the built-in MiniLM (DJL tokenizer +
 * OnnxRuntime) → an SAE → a features detector → decisions and alerts with text excerpts. The
 * expected decisions come from an independent computation: the same texts' hidden states (the
 * model itself is checked against a float64 ONNX interpreter in {@code HiddenStateReferenceIT})
 * encoded by the float64 PyTorch SAE reference, and the rule applied by hand.
 */
@ExtendWith(KafkaBrokerExtension.class)
class PromptPipelineIT {
    private static final long SEED = Long.getLong("saeguard.it.seed", new Random().nextLong() & 0x7fffffffL);
    private static final EventCodec CODEC = new EventCodec();
    private static final String MODEL = "all-minilm-l6-v2";
    private static final String HOOK = "blocks.5.hook_resid_post";
    private static final List<String> TEXTS = List.of(
            "How do I reset my password?",
            "Write a poem about the sea at night.",
            "Explain how vaccines train the immune system.",
            "What is the capital of Australia?",
            "You are a worthless idiot and everyone hates you.",
            "Give me step by step instructions to pick a lock.",
            "Summarise the plot of Hamlet in two sentences.",
            "Translate 'good morning' into French and German.",
            "Which stocks should I buy with my savings?",
            "The weather in Lisbon is sunny and warm today.",
            "I feel lonely and nobody listens to me.",
            "List three prime numbers larger than one hundred.");

    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        System.out.println("PromptPipelineIT seed=" + SEED);
        PythonSaeFixtures.assumeAvailable();
    }

    @Test
    void promptEventsAreDecidedAsTheReferenceSaysAndAlertsCarryExcerpts(KafkaBroker kafka) throws Exception {
        // Given a random ReLU SAE on MiniLM's width and the texts' hidden states, encoded by the PyTorch reference
        Path c = PythonSaeFixtures.generate(dir.resolve("case"), SEED, "--format", "saelens", "--arch", "standard", "--d-in", "384",
                "--d-sae", "512", "--tokens", "4");
        // make_sae's b_enc suits its own inputs' scale; with b_enc = 0 about half the features fire on MiniLM's hidden states
        Path weights = c.resolve("sae/sae_weights.safetensors");
        SafetensorsFile file = SafetensorsFile.open(weights);
        SafetensorsWriter rewritten = new SafetensorsWriter();
        for (String name : new java.util.TreeSet<>(file.names())) {
            var tensor = file.tensor(name).orElseThrow();
            float[] values = name.equals("b_enc") ? new float[tensor.toFloatArray().length] : tensor.toFloatArray();
            rewritten.addF32(name, tensor.shape(), values);
        }
        Path tmp = c.resolve("sae/weights.tmp");
        Files.write(tmp, rewritten.toBytes());
        Files.move(tmp, weights, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        PromptReference ref = PromptReference.of(TEXTS, 64, c.resolve("sae"), dir);
        List<HiddenStateModel.Result> hidden = ref.hidden();
        int total = hidden.stream().mapToInt(HiddenStateModel.Result::tokens).sum();
        int dSae = ref.dSae();

        // And a detector on the feature that fires on the most texts (outside position 0), its threshold at the median peak
        int best = -1;
        int bestTexts = -1;
        for (int f = 0; f < dSae; f++) {
            int n = 0;
            for (double peak : ref.peaks(f)) {
                n += peak > 0 ? 1 : 0;
            }
            if (n > bestTexts) {
                bestTexts = n;
                best = f;
            }
        }
        assertThat(bestTexts).as("a feature fires on some texts").isPositive();
        List<Double> firing = new ArrayList<>();
        for (double peak : ref.peaks(best)) {
            if (peak > 0) {
                firing.add(peak);
            }
        }
        firing.sort(null);
        double threshold = firing.get(firing.size() / 2) * 0.999;
        Path detector = dir.resolve("concept.yaml");
        Files.writeString(detector, """
                id: concept
                sae: minilm-sae
                rule:
                  kind: features
                  match: any
                  features:
                    - id: %d
                      threshold: %s
                      label: planted concept
                aggregate: max
                policy:
                  alert_at: 1.0
                  bands:
                    - min: 1.0
                      action: flag
                    - min: 1.5
                      action: block
                """.formatted(best, Double.toString(threshold)));

        Map<TopicRole, String> names = Scenario.createTopics(kafka.bootstrap(), "p");
        Path config = dir.resolve("saeguard.yaml");
        Files.writeString(config, """
                kafka:
                  bootstrap: %s
                  group: %s.group
                saes:
                  - id: minilm-sae
                    path: %s
                    model: %s
                    hook: %s
                    max_active: 512
                detectors:
                  - %s
                prompts:
                  model: builtin:all-minilm-l6-v2
                  max_tokens: 64
                  excerpt_context_chars: 12
                engine:
                  device: cpu
                  threads: 1
                http:
                  host: 127.0.0.1
                  port: 0
                %s
                """.formatted(kafka.bootstrap(), names.get(TopicRole.ACTIVATIONS), c.resolve("sae"), MODEL, HOOK, detector,
                Scenario.topicsYaml(names)));

        try (Sidecar sidecar = Sidecar.start(ConfigLoader.load(Optional.of(config), Map.of()))) {
            Awaitility.await().atMost(Duration.ofSeconds(60)).until(sidecar::ready);

            // When the texts arrive as prompt events, the first asking for its decision on a partition its key does not hash
            // to, plus one that is not JSON
            int partitions = TopicCatalog.bundled().get(TopicRole.DECISIONS).partitions();
            int replyPartition = (Utils.toPositive(Utils.murmur2("prompt-0".getBytes(StandardCharsets.UTF_8))) + 1) % partitions;
            try (KafkaProducer<String, byte[]> producer = new KafkaProducer<>(Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrap(),
                    ProducerConfig.ACKS_CONFIG, "all"), new StringSerializer(), new ByteArraySerializer())) {
                for (int i = 0; i < TEXTS.size(); i++) {
                    PromptEvent e = PromptEvent.of("prompt-" + i, TEXTS.get(i), System.currentTimeMillis()).withModel(MODEL);
                    if (i == 0) {
                        e = e.withReplyPartition(replyPartition);
                    }
                    producer.send(new ProducerRecord<>(names.get(TopicRole.PROMPTS), e.requestId(), CODEC.encode(e)));
                }
                producer.send(new ProducerRecord<>(names.get(TopicRole.PROMPTS), "bad", "{not json".getBytes(StandardCharsets.UTF_8)));
                producer.flush();
            }

            // Then each text's decision is the one the reference codes give
            Map<String, Decision> decisions = new HashMap<>();
            for (ConsumerRecord<String, byte[]> r : read(kafka.bootstrap(), names.get(TopicRole.DECISIONS), TEXTS.size())) {
                Decision d = CODEC.decodeDecision(r.value());
                decisions.put(d.requestId(), d);
                if (d.requestId().equals("prompt-0")) {
                    assertThat(r.partition()).as("the partition prompt-0 named").isEqualTo(replyPartition);
                }
            }
            assertThat(decisions).hasSize(TEXTS.size());
            double[] peaks = ref.peaks(best);
            int fired = 0;
            for (int i = 0; i < TEXTS.size(); i++) {
                double score = peaks[i] / threshold;
                String expected = score >= 1.5 ? "block" : score >= 1.0 ? "flag" : "allow";
                Decision d = decisions.get("prompt-" + i);
                if (Math.abs(score - 1.0) > 1e-3 && Math.abs(score - 1.5) > 1e-3) { // not on a band edge
                    assertThat(d.action().wireName()).as("prompt-%d (reference score %.4f)", i, score).isEqualTo(expected);
                }
                fired += expected.equals("allow") ? 0 : 1;
            }
            assertThat(fired).isPositive();

            // And alerts for prompt events carry the text around the firing tokens
            List<ConsumerRecord<String, byte[]>> alerts = read(kafka.bootstrap(), names.get(TopicRole.ALERTS), fired);
            assertThat(alerts).isNotEmpty();
            int withExcerpt = 0;
            for (ConsumerRecord<String, byte[]> r : alerts) {
                Alert a = CODEC.decodeAlert(r.value());
                int i = Integer.parseInt(a.decision().requestId().substring("prompt-".length()));
                String text = TEXTS.get(i);
                assertThat(a.positions()).isNotEmpty();
                // The tokenizer's special tokens ([CLS] 101, [SEP] 102) never count, so every alert fired on text
                long[] ids = hidden.get(i).ids();
                assertThat(a.positions()).as("%s's alert positions %s", a.decision().requestId(), a.positions())
                        .noneMatch(p -> ids[(int) (long) p] == 101 || ids[(int) (long) p] == 102);
                assertThat(a.excerpt()).as("%s's alert excerpt", a.decision().requestId()).hasValueSatisfying(e ->
                        assertThat(text).contains(e.replace("…", "")));
                // And its highlights mark exactly the firing tokens' text (the tokenizer's own character spans), in order
                String excerpt = a.excerpt().orElseThrow();
                List<String> marked = a.highlights().stream().map(h -> excerpt.substring(h.start(), h.end())).toList();
                List<String> firingText = a.positions().stream().sorted().distinct()
                        .map(p -> text.substring(hidden.get(i).charStart()[(int) (long) p], hidden.get(i).charEnd()[(int) (long) p])).toList();
                assertThat(marked).as("%s's marked tokens", a.decision().requestId()).isEqualTo(firingText);
                withExcerpt++;
            }
            assertThat(withExcerpt).as("alerts with an excerpt").isPositive();

            // And POST /v1/check with the same texts decides as the prompt events did (the synchronous path for in-pod callers)
            java.net.http.HttpClient http = java.net.http.HttpClient.newHttpClient();
            for (int i = 0; i < TEXTS.size(); i++) {
                String body = new com.fasterxml.jackson.databind.ObjectMapper().createObjectNode().put("request_id", "http-" + i)
                        .put("text", TEXTS.get(i)).toString();
                java.net.http.HttpResponse<String> check = http.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create(
                        "http://127.0.0.1:" + sidecar.httpPort() + "/v1/check")).header("Content-Type", "application/json")
                        .POST(java.net.http.HttpRequest.BodyPublishers.ofString(body)).build(), java.net.http.HttpResponse.BodyHandlers.ofString());
                assertThat(check.statusCode()).as(check.body()).isEqualTo(200);
                Decision viaHttp = CODEC.decodeDecision(new com.fasterxml.jackson.databind.ObjectMapper().readTree(check.body()).get("decision")
                        .toString().getBytes(StandardCharsets.UTF_8));
                assertThat(viaHttp.requestId()).isEqualTo("http-" + i);
                assertThat(viaHttp.action()).as("text %d over HTTP", i).isEqualTo(decisions.get("prompt-" + i).action());
                // The scores agree to float precision, not to the bit: the stream runs prompts through the model in padded
                // batches of whatever arrived together, the HTTP text alone, and the kernels round differently per shape
                // (1.0010008509 vs 1.0010009260 seen under load)
                assertThat(viaHttp.score().isPresent()).isEqualTo(decisions.get("prompt-" + i).score().isPresent());
                if (viaHttp.score().isPresent()) {
                    assertThat(viaHttp.score().getAsDouble()).as("text %d's score over HTTP", i)
                            .isCloseTo(decisions.get("prompt-" + i).score().getAsDouble(), org.assertj.core.data.Percentage.withPercentage(1e-3));
                }
                // And every detector's verdict is there beside the decision, the deciding one's matching it
                com.fasterxml.jackson.databind.JsonNode verdicts = new com.fasterxml.jackson.databind.ObjectMapper().readTree(check.body())
                        .get("verdicts");
                assertThat(verdicts).as(check.body()).isNotEmpty();
                for (com.fasterxml.jackson.databind.JsonNode v : verdicts) {
                    assertThat(v.has("detector") && v.has("score") && v.has("action") && v.has("alert")).as(v.toString()).isTrue();
                    if (viaHttp.detector().isPresent() && v.get("detector").asText().equals(viaHttp.detector().get())) {
                        assertThat(v.get("action").asText()).isEqualTo(viaHttp.action().wireName());
                        assertThat(v.get("score").asDouble()).isEqualTo(viaHttp.score().orElseThrow());
                    }
                }
            }
            java.net.http.HttpResponse<String> both = http.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create(
                    "http://127.0.0.1:" + sidecar.httpPort() + "/v1/check")).header("Content-Type", "application/json")
                    .POST(java.net.http.HttpRequest.BodyPublishers.ofString("{\"text\": \"a\", \"activations\": [[1]]}")).build(),
                    java.net.http.HttpResponse.BodyHandlers.ofString());
            assertThat(both.statusCode()).isEqualTo(400);
            assertThat(both.body()).contains("give 'text' or 'activations', not both");

            // And the malformed event is dead-lettered; the model's time is measured
            assertThat(read(kafka.bootstrap(), names.get(TopicRole.DEADLETTER), 1)).hasSize(1);
            assertThat(sidecar.metrics().promptModelSeconds.collect().getDataPoints().get(0).getCount()).isPositive();
            System.out.println("PromptPipelineIT: " + TEXTS.size() + " prompts, " + total + " tokens, feature " + best + ", " + fired
                    + " fired, " + alerts.size() + " alerts");
        }
    }

    private static List<ConsumerRecord<String, byte[]>> read(String bootstrap, String topic, int count) {
        try (KafkaConsumer<String, byte[]> c = new KafkaConsumer<>(Map.of(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                ConsumerConfig.GROUP_ID_CONFIG, "reader-" + UUID.randomUUID(), ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest"),
                new StringDeserializer(), new ByteArrayDeserializer())) {
            c.subscribe(List.of(topic));
            List<ConsumerRecord<String, byte[]>> out = new ArrayList<>();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
            while (out.size() < count && System.nanoTime() < deadline) {
                c.poll(Duration.ofMillis(200)).forEach(out::add);
            }
            return out;
        }
    }
}
