package io.saeguard.sidecar.kafka;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The embedded broker's own lifecycle: persistence across restarts and cleanup of temporary data. */
class EmbeddedKafkaIT {
    @TempDir
    Path dir;

    @Test
    void persistentBrokerKeepsItsClusterIdAndRecordsAcrossARestart() throws Exception {
        // Given a broker on a data directory with one record written
        Path data = dir.resolve("kafka");
        String clusterId;
        try (EmbeddedKafka broker = EmbeddedKafka.start(0, Optional.of(data), Map.of())) {
            System.out.println("embedded broker cold start: " + broker.startTime().toMillis() + " ms");
            clusterId = broker.clusterId().orElseThrow();
            try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap()))) {
                admin.createTopics(List.of(new NewTopic("persist", 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
            }
            try (KafkaProducer<String, String> p = new KafkaProducer<>(Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG,
                    broker.bootstrap()), new StringSerializer(), new StringSerializer())) {
                p.send(new ProducerRecord<>("persist", "k", "kept")).get(30, TimeUnit.SECONDS);
            }
        }

        // When it starts again on the same directory (on another port)
        try (EmbeddedKafka broker = EmbeddedKafka.start(0, Optional.of(data), Map.of())) {
            System.out.println("embedded broker warm restart: " + broker.startTime().toMillis() + " ms");

            // Then the cluster id and the record survived
            assertThat(broker.clusterId()).contains(clusterId);
            assertThat(readAll(broker.bootstrap(), "persist")).containsExactly("kept");
        }
        assertThat(data).exists();
    }

    @Test
    void temporaryBrokerDeletesItsDataOnClose() {
        // Given a broker without a data directory
        EmbeddedKafka broker = EmbeddedKafka.startEphemeral();
        Path data = broker.dataDir();
        assertThat(data).exists();

        // When it closes (twice: close is idempotent)
        broker.close();
        broker.close();

        // Then its data is gone
        assertThat(Files.exists(data)).isFalse();
    }

    private static List<String> readAll(String bootstrap, String topic) {
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(Map.of(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                ConsumerConfig.GROUP_ID_CONFIG, "g", ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest"),
                new StringDeserializer(), new StringDeserializer())) {
            c.subscribe(List.of(topic));
            List<String> out = new ArrayList<>();
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (out.isEmpty() && System.nanoTime() < deadline) {
                c.poll(Duration.ofMillis(200)).forEach(r -> out.add(r.value()));
            }
            return out;
        }
    }
}
