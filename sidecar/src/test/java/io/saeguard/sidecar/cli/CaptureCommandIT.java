package io.saeguard.sidecar.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.saeguard.sae.train.SparseDictionaryData;
import io.saeguard.sae.train.SparseDictionaryData.Mix;
import io.saeguard.sidecar.testing.KafkaBroker;
import io.saeguard.sidecar.testing.KafkaBrokerExtension;
import io.saeguard.sidecar.testing.SaeguardJar;
import io.saeguard.topics.activation.ActivationCodec;
import io.saeguard.topics.safetensors.DType;
import io.saeguard.topics.safetensors.HalfFloats;
import io.saeguard.topics.safetensors.SafetensorsFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.Set;
import java.util.UUID;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code saeguard capture} against a real broker: activation records of several requests, hooks and times go in; the
 * shards hold exactly the kept tokens, row for row, and {@code train} and {@code encode} (the fat jar, its own JVM)
 * read them. Fresh seed per run, printed.
 */
@ExtendWith(KafkaBrokerExtension.class)
class CaptureCommandIT {
    private static final long SEED = new Random().nextLong() & 0x7fffffffL;
    private static final int D_IN = 64;
    private static final int CHUNK = 50;
    private static final String HOOK = "blocks.3.hook_resid_post";

    @TempDir
    Path dir;

    private String topic;
    private final Map<String, float[]> sent = new HashMap<>();
    private final SparseDictionaryData data = new SparseDictionaryData(D_IN, 128, SEED);
    private long start;

    @BeforeEach
    void topic(KafkaBroker broker) throws Exception {
        System.out.println("CaptureCommandIT seed=" + SEED);
        topic = "capture-" + UUID.randomUUID();
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap()))) {
            admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all().get();
        }
    }

    /** 40 requests of 2-4 chunks at HOOK, 5 at another hook and width, one malformed record, and 3 records an hour old. */
    private void produce(KafkaBroker broker) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap());
        p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, "16777216");
        Random rnd = new Random(SEED);
        start = System.currentTimeMillis();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            for (int i = 0; i < 3; i++) {
                float[] rows = data.rows(CHUNK, SEED + 1000 + i, new Mix(0, 128, 3));
                byte[] v = ActivationCodec.builder("old-" + i).hook(HOOK).position(0).isFinal(true).activations(DType.F32, CHUNK, D_IN, rows)
                        .encode();
                producer.send(new ProducerRecord<>(topic, null, start - 3_600_000L, ("old-" + i).getBytes(), v)).get();
            }
            for (int r = 0; r < 40; r++) {
                String id = "req-" + r;
                int chunks = 2 + rnd.nextInt(3);
                for (int c = 0; c < chunks; c++) {
                    float[] rows = data.rows(CHUNK, SEED + r * 10L + c, new Mix(0, 128, 3));
                    int[] ids = new int[CHUNK];
                    int base = 1000 * c;
                    Arrays.setAll(ids, t -> base + t);
                    ActivationCodec.Builder b = ActivationCodec.builder(id).model("m").hook(HOOK).position((long) c * CHUNK)
                            .isFinal(c == chunks - 1).activations(c % 2 == 0 ? DType.F32 : DType.BF16, CHUNK, D_IN, rows);
                    if (r % 2 == 0) {
                        b.tokenIds(ids);
                    }
                    sent.put(id + "@" + c * CHUNK, c % 2 == 0 ? rows : bf16(rows));
                    producer.send(new ProducerRecord<>(topic, id.getBytes(), b.encode()));
                }
            }
            for (int r = 0; r < 5; r++) {
                byte[] v = ActivationCodec.builder("other-" + r).model("m").hook("blocks.1.hook_resid_post").position(0).isFinal(true)
                        .activations(DType.F32, 10, 32, new float[320]).encode();
                producer.send(new ProducerRecord<>(topic, ("other-" + r).getBytes(), v));
            }
            producer.send(new ProducerRecord<>(topic, "bad".getBytes(), "not safetensors".getBytes()));
            producer.flush();
        }
    }

    private static float[] bf16(float[] rows) {
        float[] out = new float[rows.length];
        for (int i = 0; i < rows.length; i++) {
            out[i] = HalfFloats.bf16ToFloat(HalfFloats.floatToBf16(rows[i]));
        }
        return out;
    }

    @Test
    void captureWritesExactlyTheKeptTokensAndTrainAndEncodeReadTheShards(KafkaBroker broker) throws Exception {
        // Given a recorded stream
        produce(broker);
        Path out = dir.resolve("capture");

        // When captured from the start of the stream at one hook, 1,000-token shards
        int code = Main.execute("capture", "--bootstrap", broker.bootstrap(), "--topic", topic, "--from", Long.toString(start - 1000),
                "--hook", HOOK, "--shard-tokens", "1000", "--out", out.toString());

        // Then every kept token is in the shards once, row for row, in order within its request
        assertThat(code).isZero();
        JsonNode manifest = new ObjectMapper().readTree(out.resolve("capture.json").toFile());
        System.out.println("capture: " + manifest);
        assertThat(manifest.get("records_read").asLong()).isEqualTo(sent.size() + 5 + 1);
        assertThat(manifest.get("records_kept").asLong()).isEqualTo(sent.size());
        assertThat(manifest.get("skipped").get("hook").asLong()).isEqualTo(5);
        assertThat(manifest.get("skipped").get("malformed").asLong()).isEqualTo(1);
        assertThat(manifest.get("tokens").asLong()).isEqualTo((long) sent.size() * CHUNK);
        List<String> lines = Files.readAllLines(out.resolve("requests.tsv"));
        Map<Integer, String> requests = new HashMap<>();
        for (String l : lines.subList(1, lines.size())) {
            String[] f = l.split("\t");
            requests.put(Integer.parseInt(f[0]), f[1]);
        }
        assertThat(requests).hasSize(40);
        Set<String> seen = new HashSet<>();
        List<String> shards = new ArrayList<>();
        manifest.get("shards").forEach(s -> shards.add(s.asText()));
        assertThat(shards).hasSize((int) Math.ceil(sent.size() * CHUNK / 1000.0));
        for (String s : shards) {
            SafetensorsFile f = SafetensorsFile.open(out.resolve(s));
            float[] acts = f.tensor("activations").orElseThrow().toFloatArray();
            int[] request = f.tensor("request").orElseThrow().toIntArray();
            long[] position = f.tensor("position").orElseThrow().toLongArray();
            // token_ids is written when a record of the shard carried them (only even requests do), -1 for the others
            int[] tokenIds = f.tensor("token_ids").map(io.saeguard.topics.safetensors.Tensor::toIntArray).orElse(null);
            for (int t = 0; t < request.length; t++) {
                String id = requests.get(request[t]);
                long chunkStart = position[t] / CHUNK * CHUNK;
                float[] expected = sent.get(id + "@" + chunkStart);
                int row = (int) (position[t] - chunkStart);
                assertThat(Arrays.copyOfRange(acts, t * D_IN, (t + 1) * D_IN)).as("%s position %d", id, position[t])
                        .containsExactly(Arrays.copyOfRange(expected, row * D_IN, (row + 1) * D_IN));
                int r = Integer.parseInt(id.substring(4));
                if (tokenIds != null) {
                    assertThat(tokenIds[t]).isEqualTo(r % 2 == 0 ? (int) (1000 * (chunkStart / CHUNK) + row) : -1);
                } else {
                    assertThat(r % 2).as("a shard without token_ids holds only requests sent without them").isOne();
                }
                assertThat(seen.add(id + "@" + position[t])).as("token counted once").isTrue();
            }
        }
        assertThat(seen).hasSize(sent.size() * CHUNK);

        // And 'train' reads the directory, 'encode' a shard
        Path sae = dir.resolve("sae");
        SaeguardJar.Completed train = SaeguardJar.run(dir, dir.resolve("train.log"), "train", "--input", out.toString(), "--out",
                sae.toString(), "--d-sae", "128", "--k", "3", "--steps", "200", "--batch", "256", "--threads", "1", "--seed",
                Long.toString(SEED));
        assertThat(train.exitCode()).as(train.output()).isZero();
        Path codes = dir.resolve("codes.safetensors");
        SaeguardJar.Completed encode = SaeguardJar.run(dir, dir.resolve("encode.log"), "encode", "--sae", sae.toString(), "--input",
                out.resolve(shards.get(0)).toString(), "--output", codes.toString(), "--threads", "1");
        assertThat(encode.exitCode()).as(encode.output()).isZero();
        assertThat(SafetensorsFile.open(codes).tensor("indices").orElseThrow().shape()).containsExactly(1000, 3);
    }

    @Test
    void aSampleKeepsWholeRequestsAndAWindowLeavesOutOlderRecords(KafkaBroker broker) throws Exception {
        // Given a recorded stream, with three records an hour old
        produce(broker);
        Path out = dir.resolve("sampled");

        // When half the requests are sampled from ten minutes ago
        int code = Main.execute("capture", "--bootstrap", broker.bootstrap(), "--topic", topic, "--from",
                java.time.Instant.ofEpochMilli(start - 600_000).toString(), "--hook", HOOK, "--sample", "0.5", "--out", out.toString());

        // Then every kept request is whole, none of the old ones is there, and roughly half were kept
        assertThat(code).isZero();
        SafetensorsFile f = SafetensorsFile.open(out.resolve("capture-00000.safetensors"));
        int[] request = f.tensor("request").orElseThrow().toIntArray();
        List<String> lines = Files.readAllLines(out.resolve("requests.tsv"));
        Map<Integer, Long> tokensPerRequest = new HashMap<>();
        for (int r : request) {
            tokensPerRequest.merge(r, 1L, Long::sum);
        }
        for (String l : lines.subList(1, lines.size())) {
            String[] fields = l.split("\t");
            assertThat(fields[1]).startsWith("req-");
            long expected = sent.keySet().stream().filter(k -> k.startsWith(fields[1] + "@")).count() * CHUNK;
            assertThat(tokensPerRequest.get(Integer.parseInt(fields[0]))).as(fields[1]).isEqualTo(expected);
        }
        assertThat(lines.size() - 1).isBetween(8, 32);
    }

    @Test
    void aTimeThatIsNotATimeFailsWithOneLineSayingWhatATimeIs() {
        int code = Main.execute("capture", "--bootstrap", "127.0.0.1:1", "--from", "yesterday", "--out", dir.resolve("x").toString());
        assertThat(code).isEqualTo(1);
        assertThat(dir.resolve("x")).doesNotExist();
    }
}
