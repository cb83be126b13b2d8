package io.saeguard.sidecar.pipeline;

import io.saeguard.topics.events.JudgeVerdict;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;

/**
 * A decoded judge's verdict on its way to the engine thread ({@link JudgeCascade}): the original record (for the commit
 * and the dead-letter topic), the {@link Generation} it was consumed in, and the verdict. It holds no tokens in the
 * in-flight count. Immutable.
 */
record VerdictWork(ConsumerRecord<String, byte[]> record, long generation, JudgeVerdict verdict) {
    Source source() {
        return new Source(new TopicPartition(record.topic(), record.partition()), record.offset(), generation, 0);
    }
}
