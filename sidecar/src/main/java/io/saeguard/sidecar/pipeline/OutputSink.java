package io.saeguard.sidecar.pipeline;

import java.util.List;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;

/**
 * Where a record's outputs go. Each input record produces one group of outputs (a decision and its
 * alerts, or one dead-letter record); the group is delivered as a whole, after which the record
 * counts as finished for offset commits.
 *
 * <ul>
 *   <li>{@link DirectSink} (at-least-once): sends at once with the idempotent producer; the record
 *       is finished when Kafka acknowledged every output; offsets are committed by the consumer.</li>
 *   <li>{@link TransactionalSink} (exactly-once): the poll thread sends outputs and the consumed
 *       offsets in one Kafka transaction ({@code sendOffsetsToTransaction}); outputs of a record
 *       become visible to {@code read_committed} readers together with its offset, or not at all.</li>
 * </ul>
 *
 * Implementations are thread-safe: the engine thread and the poll thread both emit.
 */
interface OutputSink {
    /**
     * Delivers one record's outputs.
     *
     * @param source the consumed record's partition
     * @param offset the consumed record's offset
     * @param tokens tokens it holds in the in-flight count (0 if never counted)
     * @param onDelivered runs once, after all outputs were delivered (metrics)
     */
    void emit(TopicPartition source, long offset, int tokens, List<ProducerRecord<String, byte[]>> outputs, Runnable onDelivered);

    /** True once an output could not be delivered: commit nothing more, report unready. */
    boolean failed();
}
