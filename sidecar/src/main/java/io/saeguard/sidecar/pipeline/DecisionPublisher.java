package io.saeguard.sidecar.pipeline;

import io.saeguard.detectors.ChunkOutcome;
import io.saeguard.sidecar.metrics.Metrics;
import io.saeguard.topics.events.Alert;
import io.saeguard.topics.events.Decision;
import io.saeguard.topics.events.EventCodec;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Publishes a record's outputs: one decision to {@code saeguard.decisions} and its alerts to
 * {@code saeguard.alerts}, keyed by request id. When Kafka has acknowledged all of them the record
 * is done ({@link Ack}); a failed write leaves it unfinished, so its offset is never committed and
 * the record is processed again after a restart (at-least-once), and the sidecar reports unready.
 *
 * <p>{@code KafkaProducer.send} may block (metadata, a full buffer), so it is called from the engine
 * thread, never from a Vert.x event loop. Thread-safe.
 */
final class DecisionPublisher {
    private static final Logger LOGGER = LoggerFactory.getLogger(DecisionPublisher.class);
    private static final EventCodec CODEC = new EventCodec();

    private final Producer<String, byte[]> producer;
    private final String decisionsTopic;
    private final String alertsTopic;
    private final Metrics metrics;
    private final Consumer<Ack> acks;
    private final AtomicBoolean failed = new AtomicBoolean();

    DecisionPublisher(Producer<String, byte[]> producer, String decisionsTopic, String alertsTopic, Metrics metrics, Consumer<Ack> acks) {
        this.producer = producer;
        this.decisionsTopic = decisionsTopic;
        this.alertsTopic = alertsTopic;
        this.metrics = metrics;
        this.acks = acks;
    }

    /** Publishes the outcome of {@code work}; returns the decision as published (latency filled in). */
    Decision publish(Work work, ChunkOutcome outcome) {
        long produced = work.record().timestamp();
        long now = System.currentTimeMillis();
        Decision decision = outcome.decision().toBuilder().latencyMs(Math.max(0, now - produced)).ts(now).build();
        int parts = 1 + outcome.alerts().size();
        AtomicInteger remaining = new AtomicInteger(parts);
        String key = work.chunk().requestId();
        Callback done = (meta, e) -> {
            if (e != null) {
                if (failed.compareAndSet(false, true)) {
                    LOGGER.atError().addKeyValue("topic", work.record().topic()).addKeyValue("offset", work.record().offset())
                            .log("publishing a decision failed; the record stays uncommitted: {}", e.toString());
                }
                return;
            }
            if (remaining.decrementAndGet() == 0) {
                metrics.decisionLatency.observe(Math.max(0, System.currentTimeMillis() - produced) / 1000.0);
                metrics.events.labelValues(work.record().topic(), Metrics.OUTCOME_DECIDED).inc();
                metrics.decisions.labelValues(decision.detector().orElse("none"), decision.action().wireName()).inc();
                acks.accept(new Ack(work.partition(), work.record().offset(), work.tokens()));
            }
        };
        producer.send(new ProducerRecord<>(decisionsTopic, key, CODEC.encode(decision)), done);
        for (Alert alert : outcome.alerts()) {
            metrics.alerts.labelValues(alert.detector()).inc();
            producer.send(new ProducerRecord<>(alertsTopic, key, CODEC.encode(alert)), done);
        }
        return decision;
    }

    /** True once any output failed to publish. */
    boolean failed() {
        return failed.get();
    }
}
