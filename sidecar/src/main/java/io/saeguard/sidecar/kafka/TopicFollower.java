package io.saeguard.sidecar.kafka;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Follows every partition of a topic, without a consumer group, on a thread of its own for as long as the sidecar runs:
 * the shared reader of the compacted topics that every replica reads whole (reviews, detector registry) and of the
 * alerts topic's recent past.
 *
 * <p><b>Threading.</b> {@link #startFromBeginning} or {@link #startFromTail} assigns and seeks on the caller's thread,
 * then starts the follower's thread; from then on that thread alone uses the consumer. The {@link Handler} and the
 * {@link Listener} are called on it, one record at a time in each partition's offset order, so they need no lock for
 * the state only they write (state that other threads read must still be published safely). {@link #close} may be
 * called from any thread, once.
 *
 * <p><b>Lifecycle.</b> The thread stops on {@link #close} ({@code wakeup}, then up to 10 s for it to finish; the consumer
 * is closed once it has), or when the handler throws: the failure is logged and given to {@link Listener#failed}, and
 * nothing more is read.
 */
public final class TopicFollower implements AutoCloseable {
    private static final Logger LOGGER = LoggerFactory.getLogger(TopicFollower.class);
    private static final Duration POLL = Duration.ofMillis(500);

    /** Takes one record, on the follower's thread; may block (the next record waits). */
    @FunctionalInterface
    public interface Handler {
        void accept(ConsumerRecord<String, byte[]> record) throws InterruptedException;
    }

    /** What the follower's thread tells its owner besides records; both are called at most once. */
    public interface Listener {
        /** Hears nothing. */
        Listener NONE = new Listener() {
        };

        /** The records up to the end offsets seen at start have been handed over (not called by {@link #startFromTail}). */
        default void caughtUp() {
        }

        /** The handler threw (or the consumer failed): nothing more is read. */
        default void failed(Throwable failure) {
        }
    }

    private final String description;
    private final String topic;
    private final Consumer<String, byte[]> consumer;
    private final Handler handler;
    private final Listener listener;
    private final Thread thread;
    private volatile boolean stopping;

    // The follower's thread only, once started.
    private Map<TopicPartition, Long> startEnd = Map.of();
    private boolean caughtUp;

    /**
     * @param threadName  the follower thread's name ({@code saeguard-reviews})
     * @param description what follows the topic, for the log ({@code review log})
     * @param consumer    a consumer without a group; this follower closes it
     */
    public TopicFollower(String threadName, String description, String topic, Consumer<String, byte[]> consumer, Handler handler,
            Listener listener) {
        this.description = Objects.requireNonNull(description);
        this.topic = Objects.requireNonNull(topic);
        this.consumer = Objects.requireNonNull(consumer);
        this.handler = Objects.requireNonNull(handler);
        this.listener = Objects.requireNonNull(listener);
        this.thread = new Thread(this::run, threadName);
        thread.setDaemon(true);
    }

    /**
     * Assigns every partition from its beginning, notes the end offsets (for {@link Listener#caughtUp}) and starts the
     * thread.
     *
     * @param missingTopic the message when the topic does not exist: its role and how to create it
     * @throws IllegalStateException with {@code missingTopic} when the topic does not exist
     */
    public void startFromBeginning(Duration timeout, String missingTopic) {
        List<TopicPartition> partitions = assign(timeout, missingTopic);
        consumer.seekToBeginning(partitions);
        startEnd = Map.copyOf(consumer.endOffsets(partitions, timeout));
        thread.start();
    }

    /**
     * Assigns every partition from {@code tail} records before its end (or its beginning, when nearer) and starts the
     * thread.
     *
     * @throws IllegalStateException with {@code missingTopic} when the topic does not exist
     */
    public void startFromTail(Duration timeout, String missingTopic, long tail) {
        List<TopicPartition> partitions = assign(timeout, missingTopic);
        Map<TopicPartition, Long> begin = consumer.beginningOffsets(partitions, timeout);
        Map<TopicPartition, Long> end = consumer.endOffsets(partitions, timeout);
        for (TopicPartition p : partitions) {
            consumer.seek(p, Math.max(begin.getOrDefault(p, 0L), end.getOrDefault(p, 0L) - tail));
        }
        caughtUp = true;
        thread.start();
    }

    private List<TopicPartition> assign(Duration timeout, String missingTopic) {
        List<TopicPartition> partitions = consumer.partitionsFor(topic, timeout).stream()
                .map(p -> new TopicPartition(p.topic(), p.partition())).toList();
        if (partitions.isEmpty()) {
            throw new IllegalStateException(missingTopic);
        }
        consumer.assign(partitions);
        return partitions;
    }

    /** Whether the thread reads: started, not closed and not failed. */
    public boolean running() {
        return thread.isAlive();
    }

    private void run() {
        try {
            while (!stopping) {
                for (ConsumerRecord<String, byte[]> r : consumer.poll(POLL)) {
                    handler.accept(r);
                }
                if (!caughtUp && startEnd.entrySet().stream().allMatch(e -> consumer.position(e.getKey()) >= e.getValue())) {
                    caughtUp = true;
                    listener.caughtUp();
                }
            }
        } catch (WakeupException e) {
            // closing
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException | Error e) {
            LOGGER.atError().addKeyValue("topic", topic).setCause(e).log("the {} stopped reading: {}", description, e.toString());
            listener.failed(e);
        }
    }

    /** Stops the thread and, once it has stopped, closes the consumer. */
    @Override
    public void close() {
        stopping = true;
        consumer.wakeup();
        try {
            thread.join(10_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (!thread.isAlive()) {
            consumer.close(Duration.ofSeconds(5));
        }
    }
}
