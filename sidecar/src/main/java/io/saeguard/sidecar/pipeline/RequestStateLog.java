package io.saeguard.sidecar.pipeline;

import io.saeguard.detectors.RequestSnapshot;
import io.saeguard.detectors.RequestSnapshotCodec;
import io.saeguard.sidecar.metrics.Metrics;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.utils.Time;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@code saeguard.state} topic (docs/architecture.md#request-state): how a decided record's request state is written
 * ({@link #record}, an output of the record's group) and how the state of newly assigned input partitions is read back
 * ({@link #read}).
 *
 * <p>Each state record is keyed by request id, on the state partition with the source record's partition number, its
 * value a {@link RequestSnapshotCodec} snapshot or a tombstone (the request ended), with the source record's topic and
 * offset and the consumer group in headers. Reading back an input partition keeps, per request, the record of this group
 * whose source is that input partition at the highest offset below the position the consumer will resume from (the
 * later in the log on a tie): records at or above it describe records that will be decided again, and the highest
 * source offset rather than the last write wins because, at-least-once, a previous owner may still have written a
 * late state record after the partition moved on.
 *
 * <p>Threading: {@link #record} is static and thread-safe; everything else runs on the poll thread, which owns the
 * reader (its own consumer: no group, {@code read_committed}, never commits).
 */
final class RequestStateLog implements AutoCloseable {
    private static final Logger LOGGER = LoggerFactory.getLogger(RequestStateLog.class);
    /** Header: the topic of the record after which the state was taken. */
    static final String SOURCE_TOPIC = "saeguard.state.topic";
    /** Header: that record's offset (decimal). */
    static final String SOURCE_OFFSET = "saeguard.state.offset";
    /** Header: the consumer group that decided it; a state topic shared by two groups keeps their states apart. */
    static final String GROUP = "saeguard.state.group";
    private static final Duration POLL = Duration.ofMillis(100);

    private final String topic;
    private final String group;
    private final Consumer<String, byte[]> reader;
    private final Metrics metrics;
    private final Duration timeout;
    private final Time time;

    /**
     * @param reader  the state topic's reader: no group, {@code read_committed}, auto-commit off
     * @param timeout how long one {@link #read} may take before it fails (the poll loop then recovers and reads again)
     */
    RequestStateLog(Target target, Consumer<String, byte[]> reader, Metrics metrics, Duration timeout, Time time) {
        this.topic = target.topic();
        this.group = target.group();
        this.reader = reader;
        this.metrics = metrics;
        this.timeout = timeout;
        this.time = time;
    }

    /** Where state is written: the state topic, and the consumer group whose state it is. */
    record Target(String topic, String group) {
    }

    Target target() {
        return new Target(topic, group);
    }

    /** The state record written after {@code source} was decided: {@code state} is the request's snapshot, empty once it ended. */
    static ProducerRecord<String, byte[]> record(Target target, ConsumerRecord<String, byte[]> source, String requestId,
            Optional<byte[]> state) {
        RecordHeaders headers = new RecordHeaders();
        headers.add(GROUP, target.group().getBytes(StandardCharsets.UTF_8));
        headers.add(SOURCE_TOPIC, source.topic().getBytes(StandardCharsets.UTF_8));
        headers.add(SOURCE_OFFSET, Long.toString(source.offset()).getBytes(StandardCharsets.UTF_8));
        return new ProducerRecord<>(target.topic(), source.partition(), requestId, state.orElse(null), headers);
    }

    /**
     * Checks that the state topic exists and has as many partitions as each input topic (a request read from input
     * partition p keeps its state on state partition p).
     *
     * @throws IllegalStateException naming the topics, their counts and the fix
     */
    void checkPartitions(List<String> inputTopics) {
        int state = partitions(topic);
        for (String input : inputTopics) {
            int n = partitions(input);
            if (n != state) {
                throw new IllegalStateException("the state topic '" + topic + "' has " + state + " partitions but the input topic '" + input
                        + "' has " + n + ": the state of a request read from input partition p is kept on state partition p, so the counts "
                        + "must match; recreate '" + topic + "' with " + n + " partitions (cleanup.policy compact,delete; see topics/topics.yaml)");
            }
        }
    }

    private int partitions(String t) {
        List<PartitionInfo> p = reader.partitionsFor(t, timeout);
        if (p == null || p.isEmpty()) {
            throw new IllegalStateException("topic '" + t + "' does not exist; create the topics with 'saeguard topics create'"
                    + " (the state topic is role 'state' in topics/topics.yaml)");
        }
        return p.size();
    }

    /**
     * Reads back the request state of input partitions: per input partition, the requests whose last state record
     * sourced from it below its resume position is a snapshot (tombstones and records at or above the position left out).
     * A record that cannot be decoded is skipped, logged at WARN without its content and counted; its request starts afresh.
     *
     * @param resumeAt per input partition, the offset its consumer resumes from
     * @throws IllegalStateException when the state partitions were not read to their end within the timeout
     */
    Map<TopicPartition, List<RequestSnapshot>> read(Map<TopicPartition, Long> resumeAt) {
        Set<Integer> numbers = new TreeSet<>();
        resumeAt.keySet().forEach(tp -> numbers.add(tp.partition()));
        List<TopicPartition> statePartitions = numbers.stream().map(p -> new TopicPartition(topic, p)).toList();
        Map<TopicPartition, Map<String, Latest>> found = new HashMap<>();
        resumeAt.keySet().forEach(tp -> found.put(tp, new LinkedHashMap<>()));
        if (statePartitions.isEmpty()) {
            return Map.of();
        }
        long deadline = time.milliseconds() + timeout.toMillis();
        reader.assign(statePartitions);
        try {
            reader.seekToBeginning(statePartitions);
            Map<TopicPartition, Long> end = reader.endOffsets(statePartitions, timeout);
            int records = 0;
            while (!atEnd(statePartitions, end)) {
                if (time.milliseconds() > deadline) {
                    throw new IllegalStateException("the state topic '" + topic + "' partitions " + numbers + " were not read to their end within "
                            + timeout.toSeconds() + " s");
                }
                for (ConsumerRecord<String, byte[]> r : reader.poll(POLL)) {
                    records++;
                    apply(r, resumeAt, found);
                }
            }
            Map<TopicPartition, List<RequestSnapshot>> out = new HashMap<>();
            found.forEach((tp, m) -> {
                List<RequestSnapshot> held = new ArrayList<>();
                m.values().forEach(l -> l.snapshot().ifPresent(held::add));
                out.put(tp, held);
            });
            LOGGER.atInfo().addKeyValue("partitions", numbers).addKeyValue("records", records)
                    .addKeyValue("requests", out.values().stream().mapToInt(List::size).sum()).log("request state read back");
            return out;
        } finally {
            reader.assign(List.of());
        }
    }

    private boolean atEnd(List<TopicPartition> partitions, Map<TopicPartition, Long> end) {
        for (TopicPartition tp : partitions) {
            if (reader.position(tp, timeout) < end.getOrDefault(tp, 0L)) {
                return false;
            }
        }
        return true;
    }

    /** A request's state record with the highest source offset so far: its snapshot, empty for a tombstone or an unreadable one. */
    private record Latest(long offset, Optional<RequestSnapshot> snapshot) {
    }

    private void apply(ConsumerRecord<String, byte[]> r, Map<TopicPartition, Long> resumeAt, Map<TopicPartition, Map<String, Latest>> found) {
        Header g = r.headers().lastHeader(GROUP);
        Header t = r.headers().lastHeader(SOURCE_TOPIC);
        Header o = r.headers().lastHeader(SOURCE_OFFSET);
        if (g == null || t == null || o == null || r.key() == null) {
            skip(r, "no key or no source headers");
            return;
        }
        if (!group.equals(new String(g.value(), StandardCharsets.UTF_8))) {
            return; // another group's state
        }
        TopicPartition input = new TopicPartition(new String(t.value(), StandardCharsets.UTF_8), r.partition());
        Long below = resumeAt.get(input);
        if (below == null) {
            return; // another input topic's record (a partition not assigned here)
        }
        long offset;
        try {
            offset = Long.parseLong(new String(o.value(), StandardCharsets.UTF_8));
        } catch (NumberFormatException e) {
            skip(r, "source offset header is not a number");
            return;
        }
        Map<String, Latest> m = found.get(input);
        Latest before = m.get(r.key());
        if (offset >= below || (before != null && before.offset() > offset)) {
            return; // its record will be decided again, or a later record's state is already known
        }
        Optional<RequestSnapshot> state = Optional.empty();
        if (r.value() != null) {
            try {
                RequestSnapshot s = RequestSnapshotCodec.decode(r.value());
                if (s.requestId().equals(r.key())) {
                    state = Optional.of(s);
                } else {
                    skip(r, "the snapshot's request id differs from the record key");
                }
            } catch (RequestSnapshotCodec.SnapshotFormatException e) {
                skip(r, e.getMessage());
            }
        }
        m.put(r.key(), new Latest(offset, state));
    }

    private void skip(ConsumerRecord<String, byte[]> r, String why) {
        metrics.stateSkipped.inc();
        LOGGER.atWarn().addKeyValue("topic", r.topic()).addKeyValue("partition", r.partition()).addKeyValue("offset", r.offset())
                .log("state record skipped, its request starts afresh: {}", why);
    }

    @Override
    public void close() {
        reader.close(Duration.ofSeconds(5));
    }
}
