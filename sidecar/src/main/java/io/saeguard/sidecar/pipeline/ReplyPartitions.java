package io.saeguard.sidecar.pipeline;

import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.IntSupplier;
import org.apache.kafka.common.utils.Time;

/**
 * Whether a record's {@code reply_partition} is a partition of the decisions topic: a decision sent to a partition the
 * topic does not have would fail in the producer and put the pipeline into recovery for good, so such a record is
 * dead-lettered instead ({@link FailureReason#REPLY_PARTITION_OUT_OF_RANGE}).
 *
 * <p>The partition count is looked up once, then again only when a record names a partition at or above it, at most
 * every {@link #REFRESH_NANOS}: Kafka topics only gain partitions, so a value below a count once seen stays valid, and a
 * stream of bad values costs one lookup per interval, not one per record.
 *
 * <p>Not thread-safe: the poll thread owns it (the lookup goes through its consumer).
 */
final class ReplyPartitions {
    /** How long a count that refused a partition is trusted before it is looked up again (partitions may have been added). */
    static final long REFRESH_NANOS = TimeUnit.SECONDS.toNanos(10);

    private final String topic;
    private final IntSupplier lookup;
    private final Time time;
    private int count = -1;
    private long lookedUpNanos;

    /**
     * @param topic  the decisions topic
     * @param lookup the topic's partition count now (0 when it does not exist); may throw when the broker does not answer,
     *               which the poll loop treats as a failed iteration (it rewinds and tries the record again)
     */
    ReplyPartitions(String topic, IntSupplier lookup, Time time) {
        this.topic = topic;
        this.lookup = lookup;
        this.time = time;
    }

    /** Why {@code partition} cannot take a decision, or empty when it can. */
    Optional<String> problem(int partition) {
        if (partition < count) {
            return Optional.empty();
        }
        long now = time.nanoseconds();
        if (count < 0 || now - lookedUpNanos >= REFRESH_NANOS) {
            count = lookup.getAsInt();
            lookedUpNanos = now;
            if (partition < count) {
                return Optional.empty();
            }
        }
        if (count == 0) {
            return Optional.of("reply_partition " + partition + " names a partition of the decisions topic '" + topic
                    + "', which does not exist; create the topics (saeguard topics create) or check topics.decisions in the config");
        }
        return Optional.of("reply_partition " + partition + " is not a partition of the decisions topic '" + topic + "', which has "
                + count + " (0.." + (count - 1) + "); have the LLM server pick one below " + count
                + " (SAEGUARD_REPLY_PARTITION), leave it out to have decisions keyed by request id, or add partitions to the topic");
    }
}
