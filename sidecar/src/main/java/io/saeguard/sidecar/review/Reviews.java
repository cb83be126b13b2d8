package io.saeguard.sidecar.review;

import io.saeguard.sidecar.config.SidecarConfig;
import io.saeguard.sidecar.kafka.GrouplessConsumer;
import io.saeguard.topics.catalog.TopicCatalog;
import io.saeguard.topics.catalog.TopicRole;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.UUID;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * What the review API reads and writes: the {@link AlertLog} (the alerts topic's recent tail, followed) and the
 * {@link ReviewLog} (the compacted reviews topic), each with its own Kafka clients, started and closed together, and
 * {@link RequestDecisions} (one request's decisions, each lookup with a consumer of its own).
 *
 * @param alerts    the alerts a reviewer sees and may review
 * @param reviews   the verdicts
 * @param decisions the per-request view's decisions
 */
public record Reviews(AlertLog alerts, ReviewLog reviews, RequestDecisions decisions) implements AutoCloseable {

    /** Starts both readers on {@code bootstrap} with the config's Kafka client properties and topic names. */
    public static Reviews start(SidecarConfig config, String bootstrap, TopicCatalog catalog) {
        AlertLog alerts = new AlertLog(catalog.get(TopicRole.ALERTS).name(), consumer(config, bootstrap, "alerts"));
        try {
            alerts.start(Duration.ofSeconds(60));
        } catch (RuntimeException e) {
            alerts.close();
            throw e;
        }
        ReviewLog reviews;
        try {
            reviews = new ReviewLog(catalog.get(TopicRole.REVIEWS).name(), producer(config, bootstrap), consumer(config, bootstrap, "reviews"));
        } catch (RuntimeException e) {
            alerts.close();
            throw e;
        }
        try {
            reviews.start(Duration.ofSeconds(60));
        } catch (RuntimeException e) {
            reviews.close();
            alerts.close();
            throw e;
        }
        RequestDecisions decisions = new RequestDecisions(catalog.get(TopicRole.DECISIONS).name(),
                () -> consumer(config, bootstrap, "request-decisions"));
        return new Reviews(alerts, reviews, decisions);
    }

    /**
     * A reader of a whole topic: the configured consumer properties without a group (every replica reads everything), no
     * commits, committed records only (alerts are written in transactions under exactly-once delivery).
     */
    static KafkaConsumer<String, byte[]> consumer(SidecarConfig config, String bootstrap, String what) {
        Map<String, Object> p = GrouplessConsumer.properties(config.kafka().consumer(), bootstrap,
                "saeguard-" + what + "-" + UUID.randomUUID().toString().substring(0, 8));
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        return new KafkaConsumer<>(p, new StringDeserializer(), new ByteArrayDeserializer());
    }

    private static KafkaProducer<String, byte[]> producer(SidecarConfig config, String bootstrap) {
        Map<String, Object> p = new HashMap<>(config.kafka().producer());
        p.remove(ProducerConfig.TRANSACTIONAL_ID_CONFIG);
        p.remove(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG);
        p.put(ProducerConfig.CLIENT_ID_CONFIG, "saeguard-reviews-" + UUID.randomUUID().toString().substring(0, 8));
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        return new KafkaProducer<>(p, new StringSerializer(), new ByteArraySerializer());
    }

    /** Closes the review log, then the alert log. */
    @Override
    public void close() {
        reviews.close();
        alerts.close();
    }
}
