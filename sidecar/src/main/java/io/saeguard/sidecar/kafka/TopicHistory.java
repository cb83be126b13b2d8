package io.saeguard.sidecar.kafka;

import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;

/**
 * Reads a topic's history between two timestamps without joining a consumer group: every partition is
 * {@code assign()}ed, sought with {@code offsetsForTimes(from)}, and read up to the first record at or after
 * {@code to} or, at the latest, the end offset taken when the read began (records produced meanwhile are not
 * read, so a read on a busy topic ends). It commits nothing and produces nothing: safe to run beside the
 * sidecars that own the topic.
 *
 * <p>Not thread-safe: one reader, one thread.
 */
public final class TopicHistory {
    private static final Duration POLL = Duration.ofMillis(500);

    /** What a read covered: the records delivered and the offsets it spanned (for progress and reports). */
    public record Span(long records, long planned, Map<Integer, long[]> offsets) {
    }

    /** Called with (records read so far, records planned) after each poll; for progress output. */
    public interface Progress {
        void update(long read, long planned);
    }

    private final KafkaConsumer<byte[], byte[]> consumer;

    /** @param consumer a consumer without a group, {@code enable.auto.commit=false}; this reader does not close it */
    public TopicHistory(KafkaConsumer<byte[], byte[]> consumer) {
        this.consumer = Objects.requireNonNull(consumer);
    }

    /**
     * Passes every record of {@code topic} with a timestamp in [{@code fromMillis}, {@code toMillis}) to
     * {@code sink}, partition by partition in offset order within each partition.
     *
     * @throws IllegalArgumentException when the topic does not exist
     */
    public Span read(String topic, long fromMillis, long toMillis, Consumer<ConsumerRecord<byte[], byte[]>> sink, Progress progress) {
        List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofSeconds(30));
        if (infos == null || infos.isEmpty()) {
            throw new IllegalArgumentException("topic '" + topic + "' does not exist on the cluster (or has no partitions): check the topic "
                    + "name and --bootstrap");
        }
        List<TopicPartition> partitions = new ArrayList<>();
        for (PartitionInfo p : infos) {
            partitions.add(new TopicPartition(topic, p.partition()));
        }
        Map<TopicPartition, Long> starts = seekTimes(partitions, fromMillis);
        Map<TopicPartition, Long> ends = endsFor(partitions, toMillis);
        Map<TopicPartition, Long> remaining = new HashMap<>();
        long planned = 0;
        Map<Integer, long[]> offsets = new HashMap<>();
        for (TopicPartition tp : partitions) {
            long start = starts.get(tp);
            long end = ends.get(tp);
            offsets.put(tp.partition(), new long[] {start, Math.max(start, end)});
            if (end > start) {
                remaining.put(tp, end);
                planned += end - start;
            }
        }
        consumer.assign(remaining.keySet());
        for (Map.Entry<TopicPartition, Long> e : remaining.entrySet()) {
            consumer.seek(e.getKey(), starts.get(e.getKey()));
        }
        long read = 0;
        while (!remaining.isEmpty()) {
            ConsumerRecords<byte[], byte[]> batch = consumer.poll(POLL);
            for (TopicPartition tp : batch.partitions()) {
                Long end = remaining.get(tp);
                if (end == null) {
                    continue;
                }
                for (ConsumerRecord<byte[], byte[]> r : batch.records(tp)) {
                    if (r.offset() >= end) {
                        break;
                    }
                    if (r.timestamp() >= fromMillis && r.timestamp() < toMillis) {
                        sink.accept(r);
                        read++;
                    }
                }
            }
            // A partition is done once its position reaches the planned end (transaction markers and aborted
            // records under read_committed have offsets too, so the position, not the count of records, decides).
            for (TopicPartition tp : List.copyOf(remaining.keySet())) {
                if (consumer.position(tp) >= remaining.get(tp)) {
                    remaining.remove(tp);
                    consumer.pause(List.of(tp));
                }
            }
            progress.update(read, planned);
        }
        consumer.assign(List.of());
        return new Span(read, planned, offsets);
    }

    private Map<TopicPartition, Long> seekTimes(List<TopicPartition> partitions, long millis) {
        Map<TopicPartition, Long> query = new HashMap<>();
        partitions.forEach(tp -> query.put(tp, millis));
        Map<TopicPartition, OffsetAndTimestamp> found = consumer.offsetsForTimes(query, Duration.ofSeconds(30));
        Map<TopicPartition, Long> ends = consumer.endOffsets(partitions, Duration.ofSeconds(30));
        Map<TopicPartition, Long> out = new HashMap<>();
        for (TopicPartition tp : partitions) {
            OffsetAndTimestamp o = found.get(tp);
            out.put(tp, o != null ? o.offset() : ends.get(tp));
        }
        return out;
    }

    private Map<TopicPartition, Long> endsFor(List<TopicPartition> partitions, long toMillis) {
        Map<TopicPartition, Long> ends = consumer.endOffsets(partitions, Duration.ofSeconds(30));
        if (toMillis == Long.MAX_VALUE) {
            return ends;
        }
        Map<TopicPartition, Long> byTime = seekTimes(partitions, toMillis);
        Map<TopicPartition, Long> out = new HashMap<>();
        for (TopicPartition tp : partitions) {
            out.put(tp, Math.min(ends.get(tp), byTime.get(tp)));
        }
        return out;
    }

    /**
     * Parses a command-line time: epoch milliseconds ({@code 1733529600000}) or ISO-8601 ({@code 2026-12-07T03:00:00Z},
     * or with an offset {@code +01:00}).
     *
     * @param option the option's name, for the error message
     */
    public static long parseTime(String option, String text) {
        String t = text.strip();
        if (t.matches("\\d{1,18}")) {
            return Long.parseLong(t);
        }
        try {
            return java.time.OffsetDateTime.parse(t).toInstant().toEpochMilli();
        } catch (DateTimeParseException e) {
            try {
                return Instant.parse(t).toEpochMilli();
            } catch (DateTimeParseException e2) {
                throw new IllegalArgumentException(option + " '" + text + "' is not a time: give epoch milliseconds (1733529600000) or "
                        + "ISO-8601 with a zone (2026-12-07T03:00:00Z, 2026-12-07T04:00:00+01:00)");
            }
        }
    }

    /** An optional upper bound: {@link Long#MAX_VALUE} when absent. */
    public static long parseUntil(String option, String textOrNull) {
        return textOrNull == null ? Long.MAX_VALUE : parseTime(option, textOrNull);
    }
}
