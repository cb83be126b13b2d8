package io.saeguard.sidecar.review;

import io.saeguard.topics.DecodeException;
import io.saeguard.topics.events.Decision;
import io.saeguard.topics.events.EventCodec;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Semaphore;
import java.util.function.LongSupplier;
import java.util.function.Supplier;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.utils.Utils;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One request's decisions, read back from the decisions topic for the live page's per-request view (issue 23, item 1):
 * the allows and repeated flags that raised no alert are only there.
 *
 * <p>Each lookup opens a short-lived consumer ({@code read_committed}, no group, no commits: safe beside production),
 * and reads the partition the request id hashes to (Kafka's default partitioner). A record may have named a
 * {@code reply_partition}, which sends its decision elsewhere, and nothing on an alert says which; so when that
 * partition holds none of the request's decisions, or lacks the seq of one of its alerts, the other partitions are read
 * too, within the same bound. (A request some of whose records named a reply partition and some did not, and that had
 * no alert on the missing ones, shows only the decisions on its key's partition.)
 *
 * <p>The work is bounded: each partition is read from the offset of the request's first alert time minus
 * {@link #MARGIN} ({@code offsetsForTimes}), or of {@link #DEFAULT_WINDOW} ago when no alert of it is known, up to the end
 * offset it had when the lookup began, and at most {@link #MAX_SCANNED} records and {@link #MAX_TIME} in all. The answer
 * says {@code complete: false} when a bound cut it: the cap or the time ran out, the window began after the start of a
 * partition's log and the request's first decision (seq 0) was not in it, or an alert's decision was not found.
 * Repeats of a decision (at-least-once redelivery: same seq, position, action and detector) are listed once.
 *
 * <p>Thread-safe: at most {@link #MAX_CONCURRENT} lookups run at once, each on its caller's thread (never an event
 * loop: a lookup blocks on Kafka); one more is refused with a {@link ReviewUnavailableException}.
 */
public final class RequestDecisions {
    private static final Logger LOGGER = LoggerFactory.getLogger(RequestDecisions.class);
    private static final EventCodec CODEC = new EventCodec();
    /**
     * Records one lookup reads at most: decisions are ~300 bytes, so ~60 MB, about a second on a local broker. The
     * decisions topic keeps a day; at 200k decisions a second-to-last-hour of a busy partition is longer than this.
     */
    public static final int MAX_SCANNED = 200_000;
    /** Before the first alert: a request's first decisions (allows) may precede its first alert by a long generation. */
    public static final Duration MARGIN = Duration.ofMinutes(10);
    /** How far back a request with no known alert is looked for. */
    public static final Duration DEFAULT_WINDOW = Duration.ofHours(1);
    /** Wall-clock bound of one lookup, past which it answers with what it read. */
    public static final Duration MAX_TIME = Duration.ofSeconds(20);
    /** Lookups at once: each holds a consumer and a worker thread. */
    public static final int MAX_CONCURRENT = 2;

    /**
     * A lookup's answer.
     *
     * @param decisions the decisions' JSON as on the topic, in seq order (read order within a seq)
     * @param scanned   the records read
     * @param complete  false when a bound cut the lookup short (see the class comment)
     */
    public record Lookup(String requestId, List<String> decisions, long scanned, boolean complete) {
        public Lookup {
            decisions = List.copyOf(decisions);
        }
    }

    private final String topic;
    private final Supplier<Consumer<String, byte[]>> consumers;
    private final LongSupplier clock;
    private final int maxScanned;
    private final Duration timeout;
    private final Semaphore slots = new Semaphore(MAX_CONCURRENT);

    /** @param consumers opens a consumer without a group, {@code read_committed}; the lookup closes it */
    public RequestDecisions(String topic, Supplier<Consumer<String, byte[]>> consumers) {
        this(topic, consumers, System::currentTimeMillis, MAX_SCANNED, Duration.ofSeconds(10));
    }

    RequestDecisions(String topic, Supplier<Consumer<String, byte[]>> consumers, LongSupplier clock, int maxScanned, Duration timeout) {
        this.topic = topic;
        this.consumers = consumers;
        this.clock = clock;
        this.maxScanned = maxScanned;
        this.timeout = timeout;
    }

    /** The partition Kafka's default partitioner gives {@code requestId} (a UTF-8 key) among {@code partitions}. */
    public static int partitionOf(String requestId, int partitions) {
        return Utils.toPositive(Utils.murmur2(requestId.getBytes(StandardCharsets.UTF_8))) % partitions;
    }

    /**
     * Reads {@code requestId}'s decisions; {@code alerted} is what this replica read of its alerts (where to start, and
     * which seqs must be found).
     *
     * @throws ReviewUnavailableException when {@link #MAX_CONCURRENT} lookups are running
     * @throws IllegalStateException      when the decisions topic does not exist
     */
    public Lookup read(String requestId, Optional<AlertLog.Alerted> alerted) {
        if (!slots.tryAcquire()) {
            throw new ReviewUnavailableException(MAX_CONCURRENT + " request lookups are running; retry shortly", null);
        }
        try (Consumer<String, byte[]> consumer = consumers.get()) {
            return lookup(consumer, requestId, alerted);
        } finally {
            slots.release();
        }
    }

    private Lookup lookup(Consumer<String, byte[]> consumer, String requestId, Optional<AlertLog.Alerted> alerted) {
        long started = clock.getAsLong();
        List<TopicPartition> all = consumer.partitionsFor(topic, timeout).stream()
                .map(p -> new TopicPartition(p.topic(), p.partition())).sorted(java.util.Comparator.comparingInt(TopicPartition::partition))
                .toList();
        if (all.isEmpty()) {
            throw new IllegalStateException("the decisions topic '" + topic + "' does not exist: create it with `saeguard topics create` "
                    + "(topics.yaml role 'decisions'), or name an existing one under topics.decisions");
        }
        long since = alerted.flatMap(a -> a.firstTime().isPresent() ? Optional.of(a.firstTime().getAsLong()) : Optional.empty())
                .map(t -> t - MARGIN.toMillis()).orElse(started - DEFAULT_WINDOW.toMillis());
        Set<Long> alertSeqs = alerted.map(a -> (Set<Long>) a.seqs()).orElse(Set.of());
        Scan scan = new Scan(requestId, started + MAX_TIME.toMillis());
        TopicPartition home = all.get(partitionOf(requestId, all.size()));
        scan.read(consumer, List.of(home), Math.max(0, since));
        if (!scan.cut && (scan.found.isEmpty() || !scan.seqs().containsAll(alertSeqs))) {
            scan.read(consumer, all.stream().filter(p -> !p.equals(home)).toList(), Math.max(0, since));
        }
        List<Found> found = new ArrayList<>(scan.found);
        found.sort(java.util.Comparator.comparingLong(Found::seq));
        boolean startCovered = scan.windowFromLogStart || scan.seqs().contains(0L);
        boolean complete = !scan.cut && startCovered && scan.seqs().containsAll(alertSeqs);
        LOGGER.atDebug().addKeyValue("decisions", found.size()).addKeyValue("scanned", scan.scanned).addKeyValue("complete", complete)
                .addKeyValue("ms", clock.getAsLong() - started).log("request decisions read");
        return new Lookup(requestId, found.stream().map(Found::json).toList(), scan.scanned, complete);
    }

    private record Found(long seq, String json) {
    }

    /** One lookup's reading state, over one or two rounds of partitions. */
    private final class Scan {
        final String requestId;
        final long deadline;
        final List<Found> found = new ArrayList<>();
        final Set<List<Object>> seen = new HashSet<>();
        long scanned;
        boolean cut;
        /** Whether every partition read began at its log's start (so nothing older was left unread). */
        boolean windowFromLogStart = true;

        Scan(String requestId, long deadline) {
            this.requestId = requestId;
            this.deadline = deadline;
        }

        Set<Long> seqs() {
            Set<Long> s = new HashSet<>();
            found.forEach(f -> s.add(f.seq()));
            return s;
        }

        void read(Consumer<String, byte[]> consumer, List<TopicPartition> partitions, long since) {
            if (partitions.isEmpty()) {
                return;
            }
            // read_committed: the end offsets are the last stable offsets, what this reader can reach.
            Map<TopicPartition, Long> end = consumer.endOffsets(partitions, timeout);
            Map<TopicPartition, Long> begin = consumer.beginningOffsets(partitions, timeout);
            Map<TopicPartition, Long> times = new HashMap<>();
            partitions.forEach(p -> times.put(p, since));
            Map<TopicPartition, OffsetAndTimestamp> starts = consumer.offsetsForTimes(times, timeout);
            Map<TopicPartition, Long> todo = new HashMap<>();
            for (TopicPartition p : partitions) {
                long last = end.getOrDefault(p, 0L);
                OffsetAndTimestamp at = starts.get(p);
                long from = at == null ? last : Math.min(at.offset(), last);
                if (from > begin.getOrDefault(p, 0L)) {
                    windowFromLogStart = false;
                }
                if (from < last) {
                    todo.put(p, from);
                }
            }
            if (todo.isEmpty()) {
                return;
            }
            consumer.assign(todo.keySet());
            todo.forEach(consumer::seek);
            while (!todo.isEmpty()) {
                if (scanned >= maxScanned || clock.getAsLong() > deadline) {
                    cut = true;
                    return;
                }
                for (ConsumerRecord<String, byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    TopicPartition p = new TopicPartition(r.topic(), r.partition());
                    if (!todo.containsKey(p) || r.offset() >= end.get(p)) {
                        continue;
                    }
                    if (scanned >= maxScanned) {
                        cut = true;
                        return;
                    }
                    scanned++;
                    if (requestId.equals(r.key()) && r.value() != null) {
                        take(r);
                    }
                }
                for (TopicPartition p : List.copyOf(todo.keySet())) {
                    if (consumer.position(p, timeout) >= end.get(p)) {
                        todo.remove(p);
                        consumer.pause(List.of(p));
                    }
                }
            }
        }

        private void take(ConsumerRecord<String, byte[]> r) {
            Decision d;
            try {
                d = CODEC.decodeDecision(r.value());
            } catch (DecodeException e) {
                LOGGER.atDebug().addKeyValue("partition", r.partition()).addKeyValue("offset", r.offset())
                        .log("undecodable record on the decisions topic skipped: {}", e.getMessage());
                return;
            }
            if (seen.add(List.of(d.seq(), d.position(), d.action(), d.detector().orElse("")))) {
                found.add(new Found(d.seq(), new String(r.value(), StandardCharsets.UTF_8)));
            }
        }
    }
}
