package io.saeguard.sidecar.kafka;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.function.Consumer;
import java.util.function.LongConsumer;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * Reads a stretch of topics by timestamp, beside production and without disturbing it: partitions are {@code assign}ed
 * with no consumer group (so no group's offsets or membership change), nothing is committed, nothing is produced, and
 * only committed transactional records are read ({@code read_committed}, as exactly-once outputs must be read). The one
 * reader of history by time: {@code saeguard replay} and {@code saeguard capture} both read through it.
 *
 * <p>A stretch is fixed when it is planned ({@link #plan}): per partition from the first offset whose timestamp is at
 * or after {@code from} ({@code offsetsForTimes}) to the first at or after {@code to + 1 ms}, or to the end offset at
 * planning time; records appended later are not read, so a replay of a live topic ends.
 *
 * <p>Not thread-safe: one thread creates, plans, reads and closes it.
 */
public final class HistoryReader implements AutoCloseable {
    private static final Duration POLL = Duration.ofMillis(200);
    private static final Duration API_TIMEOUT = Duration.ofSeconds(30);

    private final KafkaConsumer<String, byte[]> consumer;

    /**
     * A partition's part of a stretch.
     *
     * @param start          first offset to read
     * @param stop           offset not to read (exclusive)
     * @param logStart       the partition's first offset still held
     * @param pastRetention  whether records at or after {@code from} may have been deleted: the stretch starts at the
     *                       log start, the log start is above 0 and its record is later than {@code from}
     */
    public record PartitionRange(TopicPartition partition, long start, long stop, long logStart, boolean pastRetention) {
        /** Offsets in the range (an upper bound on records: transaction markers take offsets too). */
        public long size() {
            return Math.max(0, stop - start);
        }
    }

    private final String missingTopicFix;

    /**
     * @param clientId         the consumer's {@code client.id} (names the command in the broker's logs and quotas)
     * @param clientProperties extra consumer properties (security settings, fetch sizes); group, commit, isolation, client
     *                         id and offset reset are set here
     * @param missingTopicFix  what the user should check when a topic does not exist, ending the error message
     */
    public HistoryReader(String bootstrap, String clientId, Map<String, String> clientProperties, String missingTopicFix) {
        this.missingTopicFix = missingTopicFix;
        Map<String, Object> p = GrouplessConsumer.properties(clientProperties, bootstrap, clientId);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) API_TIMEOUT.toMillis());
        this.consumer = new KafkaConsumer<>(p, new StringDeserializer(), new ByteArrayDeserializer());
    }

    /**
     * Plans the stretch of {@code topics} from {@code fromMs} to {@code toMs} (inclusive; absent: the end now).
     *
     * @throws IllegalArgumentException when a topic does not exist
     */
    public List<PartitionRange> plan(Collection<String> topics, long fromMs, OptionalLong toMs) {
        List<TopicPartition> partitions = new ArrayList<>();
        for (String topic : topics) {
            List<PartitionInfo> infos = consumer.partitionsFor(topic, API_TIMEOUT);
            if (infos == null || infos.isEmpty()) {
                throw new IllegalArgumentException("topic '" + topic + "' does not exist at the bootstrap (or has no partitions): "
                        + missingTopicFix);
            }
            infos.forEach(i -> partitions.add(new TopicPartition(i.topic(), i.partition())));
        }
        Map<TopicPartition, Long> ends = consumer.endOffsets(partitions, API_TIMEOUT);
        Map<TopicPartition, Long> beginnings = consumer.beginningOffsets(partitions, API_TIMEOUT);
        Map<TopicPartition, OffsetAndTimestamp> starts = consumer.offsetsForTimes(at(partitions, fromMs), API_TIMEOUT);
        Map<TopicPartition, OffsetAndTimestamp> stops = toMs.isPresent() ? consumer.offsetsForTimes(at(partitions, toMs.getAsLong() + 1), API_TIMEOUT)
                : Map.of();
        List<PartitionRange> ranges = new ArrayList<>();
        for (TopicPartition tp : partitions) {
            long end = ends.get(tp);
            long logStart = beginnings.get(tp);
            OffsetAndTimestamp s = starts.get(tp);
            long start = s == null ? end : s.offset();
            OffsetAndTimestamp e = stops.get(tp);
            long stop = e == null ? end : Math.min(e.offset(), end);
            boolean past = s != null && s.offset() == logStart && logStart > 0 && s.timestamp() > fromMs;
            ranges.add(new PartitionRange(tp, start, Math.max(start, stop), logStart, past));
        }
        return ranges;
    }

    private static Map<TopicPartition, Long> at(List<TopicPartition> partitions, long ms) {
        Map<TopicPartition, Long> m = new HashMap<>();
        partitions.forEach(tp -> m.put(tp, ms));
        return m;
    }

    /**
     * Reads every record of {@code ranges}, in each partition's order (partitions interleaved as the consumer returns
     * them), and hands each to {@code each}; {@code progress} gets the number of offsets passed so far after each poll.
     */
    public void read(List<PartitionRange> ranges, Consumer<ConsumerRecord<String, byte[]>> each, LongConsumer progress) {
        Map<TopicPartition, PartitionRange> open = new HashMap<>();
        for (PartitionRange r : ranges) {
            if (r.size() > 0) {
                open.put(r.partition(), r);
            }
        }
        consumer.assign(open.keySet());
        open.values().forEach(r -> consumer.seek(r.partition(), r.start()));
        long passedClosed = 0;
        while (!open.isEmpty()) {
            for (ConsumerRecord<String, byte[]> record : consumer.poll(POLL)) {
                PartitionRange r = open.get(new TopicPartition(record.topic(), record.partition()));
                if (r != null && record.offset() < r.stop()) {
                    each.accept(record);
                }
            }
            long passed = passedClosed;
            List<TopicPartition> done = new ArrayList<>();
            for (PartitionRange r : open.values()) {
                long position = consumer.position(r.partition(), API_TIMEOUT);
                passed += Math.min(position, r.stop()) - r.start();
                if (position >= r.stop()) {
                    done.add(r.partition());
                }
            }
            for (TopicPartition tp : done) {
                passedClosed += open.remove(tp).size();
            }
            if (!done.isEmpty()) {
                consumer.assign(open.keySet());
            }
            progress.accept(passed);
        }
    }

    @Override
    public void close() {
        consumer.close(Duration.ofSeconds(5));
    }
}
