package io.saeguard.sidecar.pipeline;

import org.apache.kafka.common.TopicPartition;

/** A record whose outputs Kafka acknowledged: its offset may be committed, its tokens leave the in-flight count. */
record Ack(TopicPartition partition, long offset, int tokens) {
}
