package io.saeguard.sidecar.review;

import io.saeguard.sidecar.kafka.TopicFollower;
import io.saeguard.topics.DecodeException;
import io.saeguard.topics.events.Alert;
import io.saeguard.topics.events.EventCodec;
import io.saeguard.topics.events.Review;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The alerts the live page shows and a reviewer can review: a follower of the alerts topic itself, so two replicas show
 * the same alerts and a restarted replica shows them again (issue 23), not only what this instance published.
 *
 * <p>Its own thread ({@code saeguard-alert-log}, a {@link TopicFollower}, which alone uses the consumer) is assigned
 * every partition, without a group, starts {@code tail} records before each partition's end (the recent past) and then follows the topic. Memory is
 * bounded twice: the JSON of the last {@code keep} alerts (what the page lists and replays) and an index from alert id
 * ({@code <request_id>/<seq>}) to the detectors that alerted on it (several can alert on one chunk) for the last
 * {@code index} alert ids (what a review may name: the detector of a review is one of its alert's, never the reviewer's
 * choice). An alert older than both is unknown here and cannot be
 * reviewed through this replica. Alerts are kept in the order this replica read them (partitions interleave); an
 * undecodable record is logged and skipped.
 *
 * <p>Thread-safe; listeners are called on the reader thread and must not block.
 */
public final class AlertLog implements AutoCloseable {
    private static final Logger LOGGER = LoggerFactory.getLogger(AlertLog.class);
    private static final EventCodec CODEC = new EventCodec();
    /** Alerts whose JSON is kept for the page. */
    public static final int KEEP = 500;
    /** Alerts per partition read back at start: enough to refill {@link #KEEP} and to review the recent past after a restart. */
    public static final int TAIL = 5_000;
    /** Alert ids (with their detector) kept for reviews: about 100 bytes each, so 100k is ~10 MB. */
    public static final int INDEX = 100_000;

    /**
     * What this replica read of one request's alerts: where to start looking for its decisions
     * ({@link RequestDecisions}).
     *
     * @param firstTime the earliest time of its alerts (the alert's {@code ts}, else its record's timestamp), epoch ms;
     *                  empty when neither was known
     * @param seqs      the seqs of its alerts, ascending (the decisions they belong to)
     */
    public record Alerted(java.util.OptionalLong firstTime, java.util.SortedSet<Long> seqs) {
        public Alerted {
            seqs = java.util.Collections.unmodifiableSortedSet(new java.util.TreeSet<>(seqs));
        }

        Alerted with(long seq, java.util.OptionalLong time) {
            java.util.TreeSet<Long> more = new java.util.TreeSet<>(seqs);
            more.add(seq);
            java.util.OptionalLong first = time.isEmpty() ? firstTime
                    : java.util.OptionalLong.of(firstTime.isEmpty() ? time.getAsLong() : Math.min(firstTime.getAsLong(), time.getAsLong()));
            return new Alerted(first, more);
        }
    }

    /**
     * One alert as the page shows it.
     *
     * @param json the alert's JSON as it is on the topic (alert.schema.json)
     */
    public record Entry(String requestId, long seq, String detector, String json) {
        /** {@code <request_id>/<seq>}. */
        public String alertId() {
            return Review.alertId(requestId, seq);
        }
    }

    private final String topic;
    private final int keep;
    private final int tail;
    private final TopicFollower follower;
    private final ArrayDeque<Entry> recent = new ArrayDeque<>();
    private final Map<String, java.util.Set<String>> detectors;
    private final Map<String, Alerted> requests;
    private final CopyOnWriteArrayList<Consumer<Entry>> listeners = new CopyOnWriteArrayList<>();

    public AlertLog(String topic, org.apache.kafka.clients.consumer.Consumer<String, byte[]> consumer) {
        this(topic, consumer, KEEP, TAIL, INDEX);
    }

    AlertLog(String topic, org.apache.kafka.clients.consumer.Consumer<String, byte[]> consumer, int keep, int tail, int index) {
        this.topic = topic;
        this.keep = keep;
        this.tail = tail;
        this.detectors = new LinkedHashMap<>(1024, 0.75f, false) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<String, java.util.Set<String>> eldest) {
                return size() > index;
            }
        };
        this.requests = new LinkedHashMap<>(1024, 0.75f, false) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<String, Alerted> eldest) {
                return size() > index;
            }
        };
        this.follower = new TopicFollower("saeguard-alert-log", "alert log", topic, consumer, this::read, TopicFollower.Listener.NONE);
    }

    /**
     * Assigns every partition, {@code tail} records before its end, and starts the reader thread.
     *
     * @throws IllegalStateException when the topic does not exist
     */
    public void start(Duration timeout) {
        follower.startFromTail(timeout, "the alerts topic '" + topic + "' does not exist: create it with `saeguard topics create` "
                + "(topics.yaml role 'alerts'), or name an existing one under topics.alerts", tail);
    }

    /** The last {@code limit} alerts (at most {@link #KEEP}), oldest first. */
    public List<Entry> recent(int limit) {
        synchronized (recent) {
            return recent.stream().skip(Math.max(0, recent.size() - limit)).toList();
        }
    }

    /** The detectors that raised alert {@code seq} of {@code requestId}, in the order read; empty when this replica has not read it. */
    public java.util.Set<String> detectorsOf(String requestId, long seq) {
        synchronized (recent) {
            return java.util.Collections.unmodifiableSet(new java.util.LinkedHashSet<>(
                    detectors.getOrDefault(Review.alertId(requestId, seq), java.util.Set.of())));
        }
    }

    /**
     * The alerts this replica read of {@code requestId} (among the last {@link #INDEX} requests alerted); empty when none.
     */
    public Optional<Alerted> ofRequest(String requestId) {
        synchronized (recent) {
            return Optional.ofNullable(requests.get(requestId));
        }
    }

    /** Adds a listener for each new alert read (on the reader thread; must not block); the handle removes it. */
    public Runnable subscribe(Consumer<Entry> listener) {
        listeners.add(listener);
        return () -> listeners.remove(listener);
    }

    /** Reads one alert record. */
    void read(ConsumerRecord<String, byte[]> r) {
        if (r.value() == null) {
            return;
        }
        Alert alert;
        try {
            alert = CODEC.decodeAlert(r.value());
        } catch (DecodeException e) {
            LOGGER.atWarn().addKeyValue("topic", r.topic()).addKeyValue("partition", r.partition()).addKeyValue("offset", r.offset())
                    .log("alert record skipped by the alert log: {}", e.getMessage());
            return;
        }
        Entry entry = new Entry(alert.requestId(), alert.seq(), alert.detector(), new String(r.value(), StandardCharsets.UTF_8));
        synchronized (recent) {
            if (recent.size() == keep) {
                recent.removeFirst();
            }
            recent.addLast(entry);
            detectors.computeIfAbsent(entry.alertId(), k -> new java.util.LinkedHashSet<>()).add(entry.detector());
            java.util.OptionalLong time = alert.decision().ts().isPresent() ? alert.decision().ts()
                    : r.timestamp() >= 0 ? java.util.OptionalLong.of(r.timestamp()) : java.util.OptionalLong.empty();
            // Removed and put back, so the requests alerted longest ago are the ones forgotten first.
            Alerted was = requests.remove(entry.requestId());
            requests.put(entry.requestId(), (was != null ? was : new Alerted(java.util.OptionalLong.empty(), new java.util.TreeSet<>()))
                    .with(entry.seq(), time));
        }
        for (Consumer<Entry> l : listeners) {
            l.accept(entry);
        }
    }

    /** Stops reading and closes the consumer. */
    @Override
    public void close() {
        follower.close();
    }
}
