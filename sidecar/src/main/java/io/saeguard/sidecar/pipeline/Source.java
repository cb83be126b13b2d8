package io.saeguard.sidecar.pipeline;

import org.apache.kafka.common.TopicPartition;

/**
 * The consumed record a group of outputs belongs to: its partition and offset (for the commit), the
 * pipeline {@link Generation} it was consumed in (outputs of an older generation are ignored after
 * a recovery), and the tokens it holds in the in-flight count (0 if never counted). The offset is {@link #NO_OFFSET} for
 * outputs of no record.
 */
record Source(TopicPartition partition, long offset, long generation, int tokens) {
    /**
     * The offset of outputs that belong to no consumed record (a judge fallback at its timeout): they finish nothing; with
     * exactly-once they go out in their partition's next transaction.
     */
    static final long NO_OFFSET = -1;

    /** Whether these outputs finish a consumed record. */
    boolean hasOffset() {
        return offset >= 0;
    }
}
