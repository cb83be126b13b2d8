package io.saeguard.topics.catalog;

import java.util.Map;
import java.util.Objects;

/**
 * One topic of the wire contract: its role, default name, partition count, replication factor and
 * Kafka topic configs (string values, exactly as {@code kafka-configs} takes them).
 */
public record TopicSpec(TopicRole role, String name, String description, int partitions, short replication,
        Map<String, String> configs) {

    public TopicSpec {
        Objects.requireNonNull(role, "role");
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(description, "description");
        configs = Map.copyOf(configs);
        if (partitions < 1) {
            throw new IllegalArgumentException("topic " + name + ": partitions must be at least 1");
        }
        if (replication < 1) {
            throw new IllegalArgumentException("topic " + name + ": replication must be at least 1");
        }
    }

    /** This spec with another name (a config override), everything else kept. */
    public TopicSpec withName(String newName) {
        return new TopicSpec(role, newName, description, partitions, replication, configs);
    }
}
