package io.saeguard.sidecar.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.saeguard.detectors.ChunkOutcome;
import io.saeguard.sidecar.metrics.Metrics;
import io.saeguard.topics.activation.ActivationCodec;
import io.saeguard.topics.events.Action;
import io.saeguard.topics.events.Alert;
import io.saeguard.topics.events.Decision;
import io.saeguard.topics.safetensors.DType;
import java.util.List;
import java.util.Optional;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.MockProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;

class DecisionPublisherTest {
    private static final int D_IN = 2;

    private final MockProducer<String, byte[]> producer = new MockProducer<>(true, null, new StringSerializer(), new ByteArraySerializer());
    private final Generation generation = new Generation();
    private final Metrics metrics = new Metrics(new PrometheusRegistry());
    private final DecisionPublisher publisher = new DecisionPublisher(new DirectSink(producer, s -> { }, generation), "decisions", "alerts",
            "shadow", "judge", Optional.empty(), metrics);

    private Work work(ActivationCodec.Builder record) throws Exception {
        float[] x = {1, 2};
        byte[] bytes = record.activations(DType.F32, 1, D_IN, x).encode();
        ConsumerRecord<String, byte[]> consumed = new ConsumerRecord<>("activations", 0, 0, "req-1", bytes);
        return new Work(consumed, generation.current(), ActivationCodec.decode(bytes), "sae", TokenNorms.ofFinite(x, 1, D_IN));
    }

    private static ChunkOutcome flagged() {
        Decision decision = Decision.builder("req-1", 0, Action.FLAG, 0).detector("d").score(1.0).build();
        Decision shadow = Decision.builder("req-1", 0, Action.BLOCK, 0).detector("s").score(1.0).build();
        return new ChunkOutcome(decision, List.of(Alert.forDecision(decision).build()), List.of(), List.of(shadow));
    }

    private ProducerRecord<String, byte[]> sentTo(String topic) {
        return producer.history().stream().filter(r -> r.topic().equals(topic)).findFirst().orElseThrow();
    }

    @Test
    void theDecisionGoesToTheReplyPartitionTheRecordNamed() throws Exception {
        // When
        publisher.publish(work(ActivationCodec.builder("req-1").replyPartition(7)), flagged());

        // Then
        assertThat(sentTo("decisions").partition()).isEqualTo(7);
        assertThat(sentTo("decisions").key()).isEqualTo("req-1");
    }

    @Test
    void alertsAndShadowDecisionsKeepTheKeysPartitionWhenTheRecordNamesAReplyPartition() throws Exception {
        // When
        publisher.publish(work(ActivationCodec.builder("req-1").replyPartition(7)), flagged());

        // Then
        assertThat(sentTo("alerts").partition()).isNull();
        assertThat(sentTo("shadow").partition()).isNull();
    }

    @Test
    void withoutAReplyPartitionTheDecisionIsPartitionedByItsKey() throws Exception {
        // When
        publisher.publish(work(ActivationCodec.builder("req-1")), flagged());

        // Then
        assertThat(sentTo("decisions").partition()).isNull();
        assertThat(sentTo("decisions").key()).isEqualTo("req-1");
    }
}
