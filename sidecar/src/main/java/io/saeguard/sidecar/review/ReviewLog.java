package io.saeguard.sidecar.review;

import io.saeguard.sidecar.kafka.TopicFollower;
import io.saeguard.topics.DecodeException;
import io.saeguard.topics.events.EventCodec;
import io.saeguard.topics.events.Review;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The reviews: the compacted reviews topic (key = {@link Review#key()}, {@code <request_id>/<seq>/<detector>}, value = a
 * {@link Review} as JSON, a later record replacing an earlier one) that every replica reads, so every replica's page shows the same verdicts and
 * none is lost on a restart (issue 23).
 *
 * <p><b>Writing</b> ({@link #publish}, any thread): the send runs on this log's own thread
 * ({@code saeguard-review-publish}, {@code send} can block on metadata); the future completes once Kafka acknowledged
 * the record, and the review is then applied here at once (the reader applies it again when it reaches it, which changes
 * nothing). Headers {@link #WHO} and {@link #WHEN} repeat reviewer and time.
 *
 * <p><b>Reading</b> (its own thread, {@code saeguard-reviews}, a {@link TopicFollower}, which alone uses the consumer):
 * every partition, no group, from the beginning, following the topic for as long as the sidecar runs. A record that does not decode is logged and
 * skipped; a tombstone removes the alert's review. Per alert only the record with the highest offset counts (one key is
 * on one partition). Memory: one small entry per reviewed alert, kept while the topic keeps it; reviews are made by
 * people, so this is thousands, not millions. The page does not wait for the log to be read: a replica that has not
 * reached the end yet shows fewer reviews, never wrong ones.
 *
 * <p>Thread-safe.
 */
public final class ReviewLog implements AutoCloseable {
    private static final Logger LOGGER = LoggerFactory.getLogger(ReviewLog.class);
    private static final EventCodec CODEC = new EventCodec();
    /** Header: who gave the verdict (the HTTP token's name). */
    public static final String WHO = "saeguard.who";
    /** Header: when, epoch milliseconds in decimal. */
    public static final String WHEN = "saeguard.when";

    private record Entry(Review review, long offset) {
    }

    private final String topic;
    private final Producer<String, byte[]> producer;
    private final TopicFollower follower;
    private final ExecutorService sender = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "saeguard-review-publish");
        t.setDaemon(true);
        return t;
    });
    private final Map<String, Entry> current = new HashMap<>();
    private final CopyOnWriteArrayList<Consumer<Review>> listeners = new CopyOnWriteArrayList<>();

    public ReviewLog(String topic, Producer<String, byte[]> producer, org.apache.kafka.clients.consumer.Consumer<String, byte[]> consumer) {
        this.topic = topic;
        this.producer = producer;
        this.follower = new TopicFollower("saeguard-reviews", "review log", topic, consumer, this::read, TopicFollower.Listener.NONE);
    }

    /**
     * Assigns every partition of the topic from the beginning and starts the reader thread.
     *
     * @throws IllegalStateException when the topic does not exist, naming it and how to create it
     */
    public void start(Duration timeout) {
        follower.startFromBeginning(timeout, "the reviews topic '" + topic + "' does not exist: create it with `saeguard topics create` "
                + "(topics.yaml role 'reviews'), or name an existing compacted topic under topics.reviews");
    }

    /** The reviews topic's name. */
    public String topic() {
        return topic;
    }

    /**
     * Publishes a verdict; completes once Kafka acknowledged it, exceptionally with {@link ReviewUnavailableException} when
     * Kafka did not take it. Never blocks.
     */
    public CompletableFuture<Review> publish(Review review) {
        CompletableFuture<Review> acked = new CompletableFuture<>();
        ProducerRecord<String, byte[]> record = new ProducerRecord<>(topic, review.key(), CODEC.encode(review));
        record.headers().add(WHO, review.reviewer().getBytes(StandardCharsets.UTF_8))
                .add(WHEN, Long.toString(review.time()).getBytes(StandardCharsets.UTF_8));
        sender.execute(() -> {
            try {
                producer.send(record, (metadata, err) -> {
                    if (err != null) {
                        acked.completeExceptionally(new ReviewUnavailableException("the review was not written to '" + topic + "': "
                                + err.getMessage(), err));
                    } else {
                        apply(review.key(), Optional.of(review), metadata.offset());
                        acked.complete(review);
                    }
                });
            } catch (RuntimeException e) {
                acked.completeExceptionally(new ReviewUnavailableException("the review was not written to '" + topic + "': " + e.getMessage(), e));
            }
        });
        return acked;
    }

    /** The current verdict on detector {@code detector}'s alert {@code seq} of {@code requestId}, as far as this replica has read. */
    public Optional<Review> get(String requestId, long seq, String detector) {
        synchronized (current) {
            return Optional.ofNullable(current.get(Review.key(requestId, seq, detector))).map(Entry::review);
        }
    }

    /** Every current verdict, oldest verdict first. */
    public List<Review> all() {
        synchronized (current) {
            return current.values().stream().map(Entry::review).sorted(Comparator.comparingLong(Review::time).thenComparing((Review r) -> r.key()))
                    .toList();
        }
    }

    /** Adds a listener for verdicts that change what this replica shows (called on the reader or a producer thread; must not block); the handle removes it. */
    public Runnable subscribe(Consumer<Review> listener) {
        listeners.add(listener);
        return () -> listeners.remove(listener);
    }

    /** Applies the record at {@code offset} for {@code key} unless a later one was applied; tells the listeners of a new review. */
    void apply(String key, Optional<Review> review, long offset) {
        synchronized (current) {
            Entry was = current.get(key);
            if (was != null && was.offset() >= offset) {
                return;
            }
            if (review.isEmpty()) {
                current.remove(key);
                return;
            }
            current.put(key, new Entry(review.get(), offset));
            if (was != null && was.review().equals(review.get())) {
                return;
            }
        }
        for (Consumer<Review> l : listeners) {
            l.accept(review.get());
        }
    }

    /** Reads one record of the topic; undecodable ones are logged (without their note) and skipped. */
    void read(ConsumerRecord<String, byte[]> r) {
        if (r.key() == null) {
            LOGGER.atWarn().addKeyValue("topic", r.topic()).addKeyValue("offset", r.offset()).log("review record without a key skipped");
            return;
        }
        if (r.value() == null) {
            apply(r.key(), Optional.empty(), r.offset());
            return;
        }
        Review review;
        try {
            review = CODEC.decodeReview(r.value());
        } catch (DecodeException e) {
            LOGGER.atWarn().addKeyValue("topic", r.topic()).addKeyValue("offset", r.offset()).log("review record skipped: {}", e.getMessage());
            return;
        }
        if (!review.key().equals(r.key())) {
            LOGGER.atWarn().addKeyValue("topic", r.topic()).addKeyValue("offset", r.offset())
                    .log("review record skipped: its key is not '<request_id>/<seq>/<detector>' of its value, '{}'", review.key());
            return;
        }
        apply(r.key(), Optional.of(review), r.offset());
    }

    /** Stops reading and closes the consumer and the producer. */
    @Override
    public void close() {
        follower.close();
        sender.shutdown();
        producer.close(Duration.ofSeconds(10));
    }
}
