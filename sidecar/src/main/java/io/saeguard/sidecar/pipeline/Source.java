package io.saeguard.sidecar.pipeline;

import org.apache.kafka.common.TopicPartition;

/**
 * The consumed record a group of outputs belongs to: its partition and offset (for the commit), the
 * pipeline {@link Generation} it was consumed in (outputs of an older generation are ignored after
 * a recovery), and the tokens it holds in the in-flight count (0 if never counted).
 */
record Source(TopicPartition partition, long offset, long generation, int tokens) {
}
