package io.saeguard.sidecar.pipeline;

import java.util.ArrayDeque;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;

/**
 * Which offsets may be committed: per partition, the highest offset such that it and every offset
 * before it that this instance consumed had its outputs acknowledged (a decision or a dead-letter
 * record). Records finish out of order (batches, retries); the committed offset only moves over a
 * contiguous run of finished ones, so a crash never skips an unfinished record.
 *
 * <p>Confined to the poll thread.
 */
final class OffsetTracker {
    private static final class PartitionState {
        final ArrayDeque<Long> pending = new ArrayDeque<>();
        final Set<Long> done = new HashSet<>();
        long first = -1;
        long committable = -1;
        long committed = -1;
    }

    private final Map<TopicPartition, PartitionState> partitions = new HashMap<>();

    /** A record was handed to the pipeline; offsets arrive in increasing order per partition. */
    void started(TopicPartition tp, long offset) {
        PartitionState s = partitions.computeIfAbsent(tp, k -> new PartitionState());
        if (s.first < 0) {
            s.first = offset;
        }
        s.pending.addLast(offset);
    }

    /** The first offset handed to the pipeline since the partition was tracked, or -1 if none. */
    long firstStarted(TopicPartition tp) {
        PartitionState s = partitions.get(tp);
        return s == null ? -1 : s.first;
    }

    /** A record's outputs were acknowledged. Unknown partitions (revoked since) are ignored. */
    void finished(TopicPartition tp, long offset) {
        PartitionState s = partitions.get(tp);
        if (s == null) {
            return;
        }
        s.done.add(offset);
        while (!s.pending.isEmpty() && s.done.remove(s.pending.peekFirst())) {
            s.committable = s.pending.pollFirst() + 1;
        }
    }

    /** Offsets to commit now (next offset to read, per partition), only where they moved since the last commit. */
    Map<TopicPartition, OffsetAndMetadata> toCommit() {
        Map<TopicPartition, OffsetAndMetadata> out = new HashMap<>();
        partitions.forEach((tp, s) -> {
            if (s.committable > s.committed) {
                out.put(tp, new OffsetAndMetadata(s.committable));
            }
        });
        return out;
    }

    /** Records that the given offsets were committed. */
    void committed(Map<TopicPartition, OffsetAndMetadata> offsets) {
        offsets.forEach((tp, o) -> {
            PartitionState s = partitions.get(tp);
            if (s != null && o.offset() > s.committed) {
                s.committed = o.offset();
            }
        });
    }

    /** Forgets partitions that were revoked or lost. */
    void remove(Iterable<TopicPartition> revoked) {
        revoked.forEach(partitions::remove);
    }

    /** Whether the partition is tracked (assigned and not revoked since). */
    boolean tracks(TopicPartition tp) {
        return partitions.containsKey(tp);
    }

    /** Records consumed but not yet finished, over the given partitions. */
    int unfinished(Collection<TopicPartition> which) {
        int n = 0;
        for (TopicPartition tp : which) {
            PartitionState s = partitions.get(tp);
            if (s != null) {
                n += s.pending.size();
            }
        }
        return n;
    }

    /** Records consumed but not yet finished, over all partitions. */
    int unfinished() {
        int n = 0;
        for (PartitionState s : partitions.values()) {
            n += s.pending.size();
        }
        return n;
    }
}
