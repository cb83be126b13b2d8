package io.saeguard.sidecar.pipeline;

import io.saeguard.sidecar.metrics.Metrics;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Sends a record that cannot be processed to the dead-letter topic: the original key, value and
 * headers, plus {@code saeguard.error.*} headers (stage, reason, class, message, topic, partition,
 * offset, timestamp) so a person can act on it from the topic alone. The record counts as done only
 * once the dead-letter write is delivered; if that write fails, the sink turns failed and the
 * sidecar stops committing, reports unready and rewinds to the committed offsets (nothing may be
 * lost silently).
 *
 * <p>Thread-safe.
 */
final class DeadLetterPublisher {
    private static final Logger LOGGER = LoggerFactory.getLogger(DeadLetterPublisher.class);
    static final String PREFIX = "saeguard.error.";

    private final OutputSink sink;
    private final String topic;
    private final Metrics metrics;

    DeadLetterPublisher(OutputSink sink, String topic, Metrics metrics) {
        this.sink = sink;
        this.topic = topic;
        this.metrics = metrics;
    }

    /**
     * Dead-letters {@code record}.
     *
     * @param source where it was consumed, its generation and its tokens in the in-flight count
     * @param reason why, and so at which {@link FailureStage} (headers and metric labels)
     */
    void send(ConsumerRecord<String, byte[]> record, Source source, FailureReason reason, Throwable error) {
        String stage = reason.stage().label();
        RecordHeaders headers = new RecordHeaders();
        for (Header h : record.headers()) {
            headers.add(h);
        }
        headers.add(PREFIX + "stage", bytes(stage));
        headers.add(PREFIX + "reason", bytes(reason.label()));
        headers.add(PREFIX + "class", bytes(error.getClass().getName()));
        headers.add(PREFIX + "message", bytes(String.valueOf(error.getMessage())));
        headers.add(PREFIX + "topic", bytes(record.topic()));
        headers.add(PREFIX + "partition", bytes(Integer.toString(record.partition())));
        headers.add(PREFIX + "offset", bytes(Long.toString(record.offset())));
        headers.add(PREFIX + "ts", bytes(Long.toString(System.currentTimeMillis())));
        LOGGER.atWarn().addKeyValue("stage", stage).addKeyValue("reason", reason.label()).addKeyValue("topic", record.topic())
                .addKeyValue("partition", record.partition()).addKeyValue("offset", record.offset())
                .log("dead-lettering record: {}", error.getMessage());
        sink.emit(source, List.of(new ProducerRecord<>(topic, null, record.key(), record.value(), headers)), () -> {
                    metrics.deadletters.labelValues(stage, reason.label()).inc();
                    metrics.events.labelValues(record.topic(), Metrics.OUTCOME_DEADLETTER).inc();
                });
    }

    /** True once an output (dead letter or decision) could not be delivered. */
    boolean broken() {
        return sink.failed();
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
