package io.saeguard.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.saeguard.topics.DecodeException;
import io.saeguard.topics.activation.ActivationChunk;
import io.saeguard.topics.activation.ActivationCodec;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Kafka's own ceiling for a topic of activation records, in the spirit of
 * {@code kafka-consumer-perf-test} (kafka-tools is not on this project's classpath): one plain
 * consumer, every partition assigned, from the beginning, the sidecar's consumer settings
 * ({@code max.poll.records} 500, otherwise defaults), counting records and bytes. It reads the topic
 * once unmeasured (metadata, first fetches, JIT), then again and again from the beginning for
 * {@code --seconds}. Two passes: the raw fetch, then fetch + what the sidecar's poll thread does per
 * record ({@link ActivationCodec#decode} and the copy to {@code float[]}). The data was written minutes
 * before, so it comes from the page cache.
 *
 * <pre>java -cp bench/target/benchmarks.jar io.saeguard.bench.ConsumeCeiling --bootstrap H:P --topic T
 *     --tokens-per-record N [--seconds 5] [--out FILE.json]</pre>
 */
public final class ConsumeCeiling {
    private ConsumeCeiling() {
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> a = new LinkedHashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) {
            a.put(args[i], args[i + 1]);
        }
        String bootstrap = require(a, "--bootstrap");
        String topic = require(a, "--topic");
        int tokensPerRecord = Integer.parseInt(require(a, "--tokens-per-record"));
        double seconds = Double.parseDouble(a.getOrDefault("--seconds", "5"));
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("topic", topic);
        out.put("tokens_per_record", tokensPerRecord);
        out.put("fetch", pass(bootstrap, topic, seconds, tokensPerRecord, false));
        out.put("fetch_and_decode", pass(bootstrap, topic, seconds, tokensPerRecord, true));
        String json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(out);
        if (a.containsKey("--out")) {
            Files.writeString(Path.of(a.get("--out")), json);
        }
        System.out.println(json);
    }

    private static Map<String, Object> pass(String bootstrap, String topic, double seconds, int tokensPerRecord, boolean decode)
            throws DecodeException {
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(Map.of(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                ConsumerConfig.CLIENT_ID_CONFIG, "consume-ceiling-" + UUID.randomUUID().toString().substring(0, 8),
                ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false", ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "500",
                ConsumerConfig.RECEIVE_BUFFER_CONFIG, "-1"), // as the sidecar's input consumer
                new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> parts = c.partitionsFor(topic, Duration.ofSeconds(10)).stream()
                    .map(p -> new TopicPartition(topic, p.partition())).toList();
            c.assign(parts);
            Map<TopicPartition, Long> ends = c.endOffsets(parts);
            if (ends.values().stream().mapToLong(Long::longValue).sum() == 0) {
                throw new IllegalStateException("topic " + topic + " is empty");
            }
            c.seekToBeginning(parts);
            long records = 0;
            long bytes = 0;
            long laps = 0;
            double checksum = 0;
            // One lap unmeasured (metadata, first fetches, JIT), then laps over the topic until `seconds` passed.
            long first = 0;
            long deadline = Long.MAX_VALUE;
            long now;
            while ((now = System.nanoTime()) < deadline) {
                ConsumerRecords<byte[], byte[]> rs = c.poll(Duration.ofMillis(200));
                for (ConsumerRecord<byte[], byte[]> r : rs) {
                    if (first != 0) {
                        records++;
                        bytes += r.serializedValueSize() + Math.max(0, r.serializedKeySize());
                    }
                    if (decode) {
                        ActivationChunk chunk = ActivationCodec.decode(r.value());
                        float[] x = chunk.toFloatArray();
                        checksum += x[0]; // keep the copy alive
                    }
                }
                if (parts.stream().allMatch(p -> c.position(p) >= ends.get(p))) {
                    c.seekToBeginning(parts);
                    if (first == 0) {
                        first = System.nanoTime();
                        deadline = first + (long) (seconds * 1e9);
                    } else {
                        laps++;
                    }
                }
            }
            double s = (now - first) / 1e9;
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("records", records);
            m.put("bytes", bytes);
            m.put("seconds", s);
            m.put("full_laps", laps);
            m.put("records_per_s", records / s);
            m.put("mb_per_s", bytes / s / 1e6);
            m.put("tokens_per_s", records * (double) tokensPerRecord / s);
            if (decode) {
                m.put("checksum", checksum);
            }
            return m;
        }
    }

    private static String require(Map<String, String> a, String k) {
        String v = a.get(k);
        if (v == null) {
            throw new IllegalArgumentException("usage: ConsumeCeiling --bootstrap H:P --topic T --tokens-per-record N"
                    + " [--seconds 5] [--out FILE.json]; missing " + k);
        }
        return v;
    }
}
