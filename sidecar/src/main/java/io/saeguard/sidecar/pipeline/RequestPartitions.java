package io.saeguard.sidecar.pipeline;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;
import org.apache.kafka.common.TopicPartition;

/**
 * Which partition each request with detector state last came from, so a revoked partition's requests can be dropped.
 * Bounded like the request state itself (least recently seen first); a request leaves at its final chunk.
 *
 * <p>Not thread-safe: the engine thread owns it.
 */
final class RequestPartitions {
    private final Map<String, TopicPartition> byRequest;

    RequestPartitions(int cap) {
        this.byRequest = new LinkedHashMap<>(16, 0.75f, true) {
            private static final long serialVersionUID = 1L;

            @Override
            protected boolean removeEldestEntry(Map.Entry<String, TopicPartition> eldest) {
                return size() > cap;
            }
        };
    }

    /** Records that the request's chunk came from {@code partition}; a final chunk ends the request. */
    void seen(String requestId, TopicPartition partition, boolean isFinal) {
        if (isFinal) {
            byRequest.remove(requestId);
        } else {
            byRequest.put(requestId, partition);
        }
    }

    /** Which requests came last from one of these partitions; forgets them. */
    Predicate<String> takeFrom(Set<TopicPartition> partitions) {
        Set<String> gone = new java.util.HashSet<>();
        byRequest.entrySet().removeIf(e -> {
            if (partitions.contains(e.getValue())) {
                gone.add(e.getKey());
                return true;
            }
            return false;
        });
        return gone::contains;
    }
}
