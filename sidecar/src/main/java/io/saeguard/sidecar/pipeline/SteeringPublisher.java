package io.saeguard.sidecar.pipeline;

import io.saeguard.topics.safetensors.SafetensorsWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Publishes steering and clamp directions to the compacted {@code saeguard.steering} registry (docs/architecture.md#the-wire-contract): key =
 * vector id {@code "<sae>/<feature>"}, value = a safetensors file with tensor {@code vector} F32 {@code [d_in]} and
 * metadata {@code id}. Only directions not yet published, or changed, are sent, so the sidecar calls
 * {@link #publish} at start and again after every detector reload, and waits for Kafka's acknowledgement: a
 * reload's new directions are in the registry before any decision names them (the engine thread, which makes
 * the decisions, is the one waiting).
 *
 * <p>Its producer is its own and never transactional: in exactly-once mode the output producer's transactions
 * belong to the poll thread, and the registry is idempotent by key anyway. Thread-safe.
 */
final class SteeringPublisher implements AutoCloseable {
    private static final Logger LOGGER = LoggerFactory.getLogger(SteeringPublisher.class);
    private static final long ACK_TIMEOUT_MS = 30_000;

    private final KafkaProducer<String, byte[]> producer;
    private final String topic;
    private final Map<String, float[]> published = new HashMap<>();

    SteeringPublisher(KafkaProducer<String, byte[]> producer, String topic) {
        this.producer = producer;
        this.topic = topic;
    }

    /**
     * Sends the directions of {@code vectors} that differ from what this publisher sent before and waits for their
     * acknowledgement.
     *
     * @return how many were sent
     * @throws IllegalStateException if Kafka did not acknowledge them; those not acknowledged are sent again by the next call
     */
    synchronized int publish(Map<String, float[]> vectors) {
        List<Map.Entry<String, float[]>> fresh = new ArrayList<>();
        for (Map.Entry<String, float[]> v : vectors.entrySet()) {
            if (!Arrays.equals(published.get(v.getKey()), v.getValue())) {
                fresh.add(v);
            }
        }
        if (fresh.isEmpty()) {
            return 0;
        }
        List<Future<RecordMetadata>> sends = new ArrayList<>(fresh.size());
        for (Map.Entry<String, float[]> v : fresh) {
            byte[] value = new SafetensorsWriter().metadata("id", v.getKey())
                    .addF32("vector", new long[] {v.getValue().length}, v.getValue()).toBytes();
            sends.add(producer.send(new ProducerRecord<>(topic, v.getKey(), value)));
        }
        producer.flush();
        try {
            for (int i = 0; i < sends.size(); i++) {
                sends.get(i).get(ACK_TIMEOUT_MS, TimeUnit.MILLISECONDS);
                published.put(fresh.get(i).getKey(), fresh.get(i).getValue().clone());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while publishing steering vectors to " + topic, e);
        } catch (ExecutionException | TimeoutException e) {
            Throwable cause = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
            throw new IllegalStateException("steering vectors could not be published to " + topic + ": " + cause, cause);
        }
        LOGGER.atInfo().addKeyValue("vectors", fresh.size()).addKeyValue("topic", topic).log("steering vectors published");
        return fresh.size();
    }

    @Override
    public void close() {
        producer.close(Duration.ofSeconds(10));
    }
}
