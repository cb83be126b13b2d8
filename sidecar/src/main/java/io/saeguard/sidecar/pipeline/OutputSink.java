package io.saeguard.sidecar.pipeline;

import java.util.List;
import org.apache.kafka.clients.producer.ProducerRecord;

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
     * @param source the consumed record; outputs of a stale generation are dropped
     * @param onDelivered runs once, after all outputs were delivered (metrics)
     */
    void emit(Source source, List<ProducerRecord<String, byte[]>> outputs, Runnable onDelivered);

    /**
     * True once an output of the current generation could not be delivered: commit nothing more,
     * report unready, until the poll thread recovers the pipeline ({@link #reset}).
     */
    boolean failed();

    /**
     * Poll thread, during a recovery: makes the sink usable again (a transactional sink replaces
     * its producer, which fences the old one and completes its open transaction) and clears the
     * failure. Throws when that is not possible yet (the broker is still away); it is tried again.
     */
    void reset();
}
