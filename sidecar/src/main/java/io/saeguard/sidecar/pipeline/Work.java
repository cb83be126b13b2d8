package io.saeguard.sidecar.pipeline;

import io.saeguard.topics.activation.ActivationChunk;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;

/**
 * One decoded activation record on its way through the pipeline: the original record (kept for
 * the dead-letter topic), the {@link Generation} it was consumed in, its chunk, the SAE it routes to, and its activations as F32 rows.
 * Handed from the poll thread to the engine thread and on to the producer's callbacks; never
 * mutated after construction.
 */
record Work(ConsumerRecord<String, byte[]> record, long generation, ActivationChunk chunk, String sae, float[] x) {
    TopicPartition partition() {
        return new TopicPartition(record.topic(), record.partition());
    }

    int tokens() {
        return chunk.tokens();
    }

    Source source() {
        return new Source(partition(), record.offset(), generation, chunk.tokens());
    }
}
