package io.saeguard.sidecar.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import io.saeguard.sae.PythonSaeFixtures;
import io.saeguard.sidecar.config.ConfigLoader;
import io.saeguard.sidecar.config.SidecarConfig;
import io.saeguard.sidecar.kafka.TopicAdmin;
import io.saeguard.topics.activation.ActivationCodec;
import io.saeguard.topics.catalog.TopicCatalog;
import io.saeguard.topics.catalog.TopicRole;
import io.saeguard.topics.events.Phase;
import io.saeguard.topics.safetensors.DType;
import io.saeguard.topics.safetensors.SafetensorsFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * A pipeline test's world: a random SAE with PyTorch's reference codes for its inputs
 * ({@code make_sae.py}), a {@code features} detector on a feature that really fires in those codes,
 * uniquely named topics on the test broker, and a sidecar config pointing at all of it. The test
 * can compute every expected decision from the reference codes and the rule, independently of the
 * code under test.
 */
final class Scenario {
    static final String SAE_ID = "test-sae";
    static final String DETECTOR = "planted";
    static final int TOKENS_PER_RECORD = 4;

    final Path dir;
    final String bootstrap;
    final TopicCatalog catalog;
    final float[] inputs;      // [tokens, dIn] row-major
    final float[] features;    // reference codes [tokens, dSae]
    final int dIn;
    final int dSae;
    final int tokens;
    final int feature;
    final float threshold;
    final Path configFile;

    private Scenario(Path dir, String bootstrap, TopicCatalog catalog, float[] inputs, float[] features, int dIn, int dSae, int feature,
            float threshold, Path configFile) {
        this.dir = dir;
        this.bootstrap = bootstrap;
        this.catalog = catalog;
        this.inputs = inputs;
        this.features = features;
        this.dIn = dIn;
        this.dSae = dSae;
        this.tokens = inputs.length / dIn;
        this.feature = feature;
        this.threshold = threshold;
        this.configFile = configFile;
    }

    /** Builds the scenario; {@code extraConfig} is appended to the generated YAML (e.g. a batching section). */
    static Scenario create(Path dir, String bootstrap, long seed, String extraConfig) throws Exception {
        Path c = PythonSaeFixtures.generate(dir.resolve("sae-case"), seed, "--format", "saelens", "--arch", "jumprelu", "--tokens", "48");
        float[] inputs = SafetensorsFile.open(c.resolve("input.safetensors")).tensor("activations").orElseThrow().toFloatArray();
        float[] features = SafetensorsFile.open(c.resolve("expected.safetensors")).tensor("features").orElseThrow().toFloatArray();
        int dIn = 64;
        int dSae = 256;
        int tokens = inputs.length / dIn;
        // The feature that fires on the most tokens, with a threshold at the median of its values: some chunks fire, some don't.
        int best = 0;
        int bestCount = -1;
        for (int f = 0; f < dSae; f++) {
            int n = 0;
            for (int t = 0; t < tokens; t++) {
                if (features[t * dSae + f] > 0) {
                    n++;
                }
            }
            if (n > bestCount) {
                bestCount = n;
                best = f;
            }
        }
        List<Float> values = new ArrayList<>();
        for (int t = 0; t < tokens; t++) {
            if (features[t * dSae + best] > 0) {
                values.add(features[t * dSae + best]);
            }
        }
        values.sort(null);
        float threshold = values.get(values.size() / 2) * 0.999f;
        Path detector = dir.resolve("planted.yaml");
        Files.writeString(detector, """
                id: %s
                sae: %s
                rule:
                  kind: features
                  match: any
                  features:
                    - id: %d
                      threshold: %s
                      label: planted concept
                aggregate: token
                policy:
                  alert_at: 1.0
                  bands:
                    - min: 1.0
                      action: flag
                    - min: 1.5
                      action: block
                """.formatted(DETECTOR, SAE_ID, best, Float.toString(threshold)));
        Map<TopicRole, String> names = createTopics(bootstrap, "t");
        TopicCatalog catalog = TopicCatalog.bundled().withNames(names);
        String topics = topicsYaml(names);
        Path config = dir.resolve("saeguard.yaml");
        Files.writeString(config, """
                kafka:
                  bootstrap: %s
                  group: %s
                  consumer:
                    session.timeout.ms: "10000"
                    heartbeat.interval.ms: "1000"
                saes:
                  - id: %s
                    path: %s
                    model: test-model
                    hook: blocks.3.hook_resid_post
                detectors:
                  - %s
                engine:
                  device: cpu
                  threads: 1
                http:
                  host: 127.0.0.1
                  port: 0
                shutdown:
                  drain_timeout_ms: 5000
                %s
                %s
                """.formatted(bootstrap, names.get(TopicRole.ACTIVATIONS) + ".group", SAE_ID, c.resolve("sae"), detector, topics, extraConfig));
        return new Scenario(dir, bootstrap, catalog, inputs, features, dIn, dSae, best, threshold, config);
    }

    /** Creates every topic under a fresh prefix ({@code <letter><8 hex>.saeguard.<role>}); returns the names. */
    static Map<TopicRole, String> createTopics(String bootstrap, String letter) throws Exception {
        String prefix = letter + UUID.randomUUID().toString().substring(0, 8) + ".";
        Map<TopicRole, String> names = new EnumMap<>(TopicRole.class);
        for (TopicRole r : TopicRole.values()) {
            names.put(r, prefix + "saeguard." + r.key());
        }
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
            TopicAdmin.createAll(admin, TopicCatalog.bundled().withNames(names));
        }
        return names;
    }

    /** The config's {@code topics:} section for these names. */
    static String topicsYaml(Map<TopicRole, String> names) {
        StringBuilder topics = new StringBuilder("topics:\n");
        names.forEach((r, n) -> topics.append("  ").append(r.key()).append(": ").append(n).append('\n'));
        return topics.toString();
    }

    /** Adds a detector definition file to the sidecar config's {@code detectors:} list, after the planted one. */
    void addDetector(Path yaml) throws Exception {
        String config = Files.readString(configFile);
        String planted = "  - " + dir.resolve("planted.yaml") + "\n";
        assertThat(config).contains(planted);
        Files.writeString(configFile, config.replace(planted, planted + "  - " + yaml + "\n"));
    }

    SidecarConfig config() throws Exception {
        return ConfigLoader.load(Optional.of(configFile), Map.of());
    }

    String topic(TopicRole role) {
        return catalog.get(role).name();
    }

    /** Waits until every partition of the activations topic has a leader (after a broker restart). */
    void awaitLeaders(Duration timeout) throws Exception {
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
            long deadline = System.nanoTime() + timeout.toNanos();
            while (System.nanoTime() < deadline) {
                try {
                    var d = admin.describeTopics(List.of(topic(TopicRole.ACTIVATIONS))).allTopicNames().get(10, TimeUnit.SECONDS)
                            .get(topic(TopicRole.ACTIVATIONS));
                    if (d.partitions().stream().allMatch(p -> p.leader() != null && !p.leader().isEmpty())) {
                        return;
                    }
                } catch (Exception e) {
                    // not ready yet
                }
                Thread.sleep(200);
            }
            throw new AssertionError("activations partitions have no leader after " + timeout);
        }
    }

    /** One activation record: tokens [first, first + TOKENS_PER_RECORD) of the reference input, as request {@code requestId}. */
    byte[] record(String requestId, int first, long position, boolean isFinal) {
        return recordBuilder(requestId, first, position, isFinal).encode();
    }

    /** The same record, asking for its decision on partition {@code replyPartition} of the decisions topic. */
    byte[] record(String requestId, int first, long position, boolean isFinal, int replyPartition) {
        return recordBuilder(requestId, first, position, isFinal).replyPartition(replyPartition).encode();
    }

    private ActivationCodec.Builder recordBuilder(String requestId, int first, long position, boolean isFinal) {
        float[] rows = new float[TOKENS_PER_RECORD * dIn];
        System.arraycopy(inputs, (first % tokens) * dIn, rows, 0, rows.length);
        return ActivationCodec.builder(requestId).model("test-model").hook("blocks.3.hook_resid_post").position(position)
                .phase(Phase.PROMPT).isFinal(isFinal).activations(DType.F32, TOKENS_PER_RECORD, dIn, rows);
    }

    /**
     * The expected score of the record built from tokens starting at {@code first} and placed at
     * request {@code position}: max over its tokens of a/threshold, leaving out request position 0
     * (BOS never counts by default).
     */
    double expectedScore(int first, long position) {
        double s = 0;
        for (int i = 0; i < TOKENS_PER_RECORD; i++) {
            if (position + i == 0) {
                continue;
            }
            int t = first % tokens + i;
            s = Math.max(s, features[t * dSae + feature] / threshold);
        }
        return s;
    }

    /** The expected action for that score under the detector's bands. */
    String expectedAction(int first, long position) {
        double s = expectedScore(first, position);
        return s >= 1.5 ? "block" : s >= 1.0 ? "flag" : "allow";
    }

    KafkaProducer<String, byte[]> producer() {
        return producer(Map.of());
    }

    /** A producer for the test's inputs, with {@code overrides} on top of the defaults below. */
    KafkaProducer<String, byte[]> producer(Map<String, Object> overrides) {
        // One request in flight: after a broker restart an idempotent producer with several in flight was seen
        // looping on OUT_OF_ORDER_SEQUENCE_NUMBER; test inputs must arrive in order anyway.
        Map<String, Object> props = new HashMap<>(Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap, ProducerConfig.ACKS_CONFIG, "all",
                ProducerConfig.MAX_REQUEST_SIZE_CONFIG, "20000000", ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, "1"));
        props.putAll(overrides);
        return new KafkaProducer<>(props, new StringSerializer(), new ByteArraySerializer());
    }

    void produce(String topic, String key, byte[] value) throws Exception {
        try (KafkaProducer<String, byte[]> p = producer()) {
            p.send(new ProducerRecord<>(topic, key, value)).get(30, TimeUnit.SECONDS);
        }
    }

    /** Reads records from the beginning of {@code topic} until {@code count} arrived or the timeout passed. */
    List<ConsumerRecord<String, byte[]>> read(TopicRole role, int count, Duration timeout) {
        try (KafkaConsumer<String, byte[]> c = new KafkaConsumer<>(Map.of(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                ConsumerConfig.GROUP_ID_CONFIG, "reader-" + UUID.randomUUID(), ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest",
                ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed"), new StringDeserializer(), new ByteArrayDeserializer())) {
            c.subscribe(List.of(topic(role)));
            List<ConsumerRecord<String, byte[]>> out = new ArrayList<>();
            long deadline = System.nanoTime() + timeout.toNanos();
            while (out.size() < count && System.nanoTime() < deadline) {
                c.poll(Duration.ofMillis(200)).forEach(out::add);
            }
            return out;
        }
    }

    /**
     * Every record of {@code role}'s topic from the beginning up to its end as a {@code read_committed}
     * reader sees the end now (the last stable offset), without joining a group.
     */
    List<ConsumerRecord<String, byte[]>> readToEnd(TopicRole role) {
        return readToEnd(bootstrap, topic(role));
    }

    /** Every record of {@code topic} from its start to its end as of now (read_committed, no consumer group). */
    static List<ConsumerRecord<String, byte[]>> readToEnd(String bootstrap, String topic) {
        Duration timeout = Duration.ofSeconds(60);
        try (KafkaConsumer<String, byte[]> c = new KafkaConsumer<>(Map.of(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed", ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false"),
                new StringDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> partitions = c.partitionsFor(topic, timeout).stream()
                    .map(p -> new TopicPartition(p.topic(), p.partition())).toList();
            c.assign(partitions);
            c.seekToBeginning(partitions);
            Map<TopicPartition, Long> end = c.endOffsets(partitions, timeout);
            List<ConsumerRecord<String, byte[]>> out = new ArrayList<>();
            long deadline = System.nanoTime() + timeout.toNanos();
            while (partitions.stream().anyMatch(tp -> c.position(tp, timeout) < end.get(tp))) {
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("could not read " + topic + " to its end " + end + " within " + timeout);
                }
                c.poll(Duration.ofMillis(200)).forEach(out::add);
            }
            return out;
        }
    }

    /** The first record keyed {@code key} on {@code topic}, waiting up to 60 s for it. */
    static ConsumerRecord<String, byte[]> awaitKey(String bootstrap, String topic, String key) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        do {
            for (ConsumerRecord<String, byte[]> r : readToEnd(bootstrap, topic)) {
                if (key.equals(r.key())) {
                    return r;
                }
            }
            Thread.sleep(200);
        } while (System.nanoTime() < deadline);
        throw new AssertionError("no record keyed " + key + " on " + topic + " within 60 s");
    }
}
