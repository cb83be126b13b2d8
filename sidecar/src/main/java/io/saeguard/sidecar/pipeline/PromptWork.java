package io.saeguard.sidecar.pipeline;

import io.saeguard.topics.events.PromptEvent;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;

/**
 * A decoded prompt event waiting for the prompt model: the original record, its generation, the
 * event, the SAE its hidden states route to, and the tokens it holds in the in-flight count (the
 * model's {@code max_tokens}: the real count is known only after tokenizing).
 */
record PromptWork(ConsumerRecord<String, byte[]> record, long generation, PromptEvent event, String sae, int counted, long receivedMs) {
    /** Received (polled and decoded) now. */
    PromptWork(ConsumerRecord<String, byte[]> record, long generation, PromptEvent event, String sae, int counted) {
        this(record, generation, event, sae, counted, System.currentTimeMillis());
    }

    Source source() {
        return new Source(new TopicPartition(record.topic(), record.partition()), record.offset(), generation, counted);
    }
}
