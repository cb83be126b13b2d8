package io.saeguard.bench;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.io.IOException;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * Matches decisions to the records they decide on, by {@code (request_id, position)}: the producer
 * {@link #expect registers} each record with its scheduled send time before sending it; a consumer
 * thread reads the decisions topic (every partition assigned, from its end at start, no group) and
 * records one sample per first decision of a record: arrival time and latency (arrival − scheduled
 * send time, {@link System#nanoTime} on both ends, same JVM). A record decided twice (at-least-once
 * redelivery) counts once, the repeat as a duplicate.
 *
 * <p>Samples are appended by the consumer thread and read by others under this object's lock.
 */
final class DecisionTracker implements AutoCloseable {
    private static final JsonFactory JSON = new JsonFactory();

    private record Sent(long scheduledNanos, int tokens, int phase) {
    }

    private final KafkaConsumer<String, byte[]> consumer;
    private final Thread thread;
    private final Map<String, Sent> pending = new ConcurrentHashMap<>();
    private final AtomicLong outstandingTokens = new AtomicLong();
    private final AtomicLong decidedTokens = new AtomicLong();
    private final AtomicLong duplicates = new AtomicLong();
    private final AtomicLong unparsable = new AtomicLong();
    private final AtomicLong flagged = new AtomicLong();
    private final CountDownLatch positioned = new CountDownLatch(1);
    private volatile Throwable failure;
    private volatile boolean running = true;
    private final Object progress = new Object();

    // Samples, in arrival order.
    private long[] arrival = new long[1 << 16];
    private long[] latency = new long[1 << 16];
    private int[] tokens = new int[1 << 16];
    private int[] phase = new int[1 << 16];
    private int[] partition = new int[1 << 16]; // of the decision, which is keyed like its record
    private int size;

    DecisionTracker(String bootstrap, String topic) {
        this.consumer = new KafkaConsumer<>(Map.of(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                ConsumerConfig.CLIENT_ID_CONFIG, "loadgen-decisions-" + UUID.randomUUID().toString().substring(0, 8),
                ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false", ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "5000",
                // OS-sized receive buffer, as the sidecar's input consumer: the client's fixed 64 KiB stalled fetches ~200 ms
                ConsumerConfig.RECEIVE_BUFFER_CONFIG, "-1"),
                new StringDeserializer(), new ByteArrayDeserializer());
        this.thread = new Thread(() -> run(topic), "loadgen-decisions");
        this.thread.setDaemon(true);
    }

    /** Starts the consumer thread and waits until it is positioned at the end of every partition. */
    void start(Duration timeout) throws InterruptedException {
        thread.start();
        if (!positioned.await(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            throw new IllegalStateException("the decisions consumer was not positioned within " + timeout
                    + (failure == null ? "" : ": " + failure));
        }
        if (failure != null) {
            throw new IllegalStateException("the decisions consumer failed: " + failure, failure);
        }
    }

    private void run(String topic) {
        try {
            List<PartitionInfo> infos = List.of();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (infos.isEmpty() && System.nanoTime() < deadline) {
                infos = consumer.partitionsFor(topic, Duration.ofSeconds(10));
                if (infos.isEmpty()) {
                    Thread.sleep(200);
                }
            }
            if (infos.isEmpty()) {
                throw new IllegalStateException("topic " + topic + " has no partitions (does it exist?)");
            }
            List<TopicPartition> parts = infos.stream().map(i -> new TopicPartition(topic, i.partition())).toList();
            consumer.assign(parts);
            consumer.seekToEnd(parts);
            parts.forEach(consumer::position); // resolve the end offsets now, before anything is produced
            positioned.countDown();
            while (running) {
                ConsumerRecords<String, byte[]> records = consumer.poll(Duration.ofMillis(50));
                if (records.isEmpty()) {
                    continue;
                }
                long now = System.nanoTime();
                for (ConsumerRecord<String, byte[]> r : records) {
                    accept(r.value(), r.partition(), now);
                }
                synchronized (progress) {
                    progress.notifyAll();
                }
            }
        } catch (WakeupException e) {
            // closing
        } catch (Throwable t) {
            failure = t;
            positioned.countDown();
        } finally {
            consumer.close(Duration.ofSeconds(2));
        }
    }

    private void accept(byte[] value, int decisionPartition, long now) {
        // A streaming read of the three top-level fields, not a tree of the whole decision: the generator shares the
        // cores with the system it measures (the tree was 38 % of this thread's samples, 2026-12-08 01:26).
        String requestId = "";
        long position = -1;
        String action = "";
        try (JsonParser p = JSON.createParser(value)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                throw new IOException("a decision is a JSON object");
            }
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.currentName();
                JsonToken t = p.nextToken();
                switch (field) {
                    case "request_id" -> requestId = t == JsonToken.VALUE_STRING ? p.getText() : "";
                    case "position" -> position = t == JsonToken.VALUE_NUMBER_INT ? p.getLongValue() : -1;
                    case "action" -> action = t == JsonToken.VALUE_STRING ? p.getText() : "";
                    default -> p.skipChildren();
                }
            }
        } catch (IOException e) {
            unparsable.incrementAndGet();
            return;
        }
        boolean flag = !"allow".equals(action);
        Sent s = pending.remove(key(requestId, position));
        if (s == null) {
            duplicates.incrementAndGet();
            return;
        }
        if (flag) {
            flagged.incrementAndGet();
        }
        outstandingTokens.addAndGet(-s.tokens());
        decidedTokens.addAndGet(s.tokens());
        synchronized (this) {
            if (size == arrival.length) {
                int n = size * 2;
                arrival = Arrays.copyOf(arrival, n);
                latency = Arrays.copyOf(latency, n);
                tokens = Arrays.copyOf(tokens, n);
                phase = Arrays.copyOf(phase, n);
                partition = Arrays.copyOf(partition, n);
            }
            arrival[size] = now;
            latency[size] = now - s.scheduledNanos();
            tokens[size] = s.tokens();
            phase[size] = s.phase();
            partition[size] = decisionPartition;
            size++;
        }
    }

    private static String key(String requestId, long position) {
        return requestId + '@' + position;
    }

    /** Registers a record about to be sent. */
    void expect(String requestId, long position, long scheduledNanos, int tokens, int phase) {
        pending.put(key(requestId, position), new Sent(scheduledNanos, tokens, phase));
        outstandingTokens.addAndGet(tokens);
    }

    /** Forgets a record whose send failed (it will never be decided). */
    void abandon(String requestId, long position) {
        Sent s = pending.remove(key(requestId, position));
        if (s != null) {
            outstandingTokens.addAndGet(-s.tokens());
        }
    }

    long outstandingTokens() {
        return outstandingTokens.get();
    }

    long decidedTokens() {
        return decidedTokens.get();
    }

    long duplicates() {
        return duplicates.get();
    }

    long unparsable() {
        return unparsable.get();
    }

    long flagged() {
        return flagged.get();
    }

    /** Records of {@code phase} sent but not decided (yet). */
    long pending(int phaseId) {
        return pending.values().stream().filter(s -> s.phase() == phaseId).count();
    }

    /** Waits until a poll delivered something, or {@code nanos} passed. */
    void awaitProgress(long nanos) throws InterruptedException {
        synchronized (progress) {
            progress.wait(Math.max(1, TimeUnit.NANOSECONDS.toMillis(nanos)));
        }
    }

    /** Waits until nothing is outstanding or the timeout passed; true if drained. */
    boolean drain(Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (outstandingTokens.get() > 0 && System.nanoTime() < deadline) {
            awaitProgress(TimeUnit.MILLISECONDS.toNanos(100));
            checkHealthy();
        }
        return outstandingTokens.get() <= 0;
    }

    void checkHealthy() {
        if (failure != null) {
            throw new IllegalStateException("the decisions consumer failed: " + failure, failure);
        }
    }

    /** Arrival (nanoTime) of the last decision of a record of {@code phaseId}; 0 if none arrived. */
    synchronized long lastArrival(int phaseId) {
        long last = 0;
        for (int i = 0; i < size; i++) {
            if (phase[i] == phaseId) {
                last = Math.max(last, arrival[i]);
            }
        }
        return last;
    }

    /** Tokens decided with arrival in {@code [from, to)} (nanoTime). */
    synchronized long tokensArrivedBetween(long from, long to) {
        long n = 0;
        for (int i = 0; i < size; i++) {
            if (arrival[i] >= from && arrival[i] < to) {
                n += tokens[i];
            }
        }
        return n;
    }

    /** Latencies (ns) of the records of {@code phaseId} scheduled in {@code [from, to)} (nanoTime of the schedule). */
    synchronized long[] latenciesScheduledBetween(int phaseId, long from, long to) {
        long[] out = new long[size];
        int n = 0;
        for (int i = 0; i < size; i++) {
            long scheduled = arrival[i] - latency[i];
            if (phase[i] == phaseId && scheduled >= from && scheduled < to) {
                out[n++] = latency[i];
            }
        }
        return Arrays.copyOf(out, n);
    }

    /**
     * As {@link #latenciesScheduledBetween}, by partition of the decisions topic (keyed by request id like the
     * records, so with as many partitions it is the record's partition): does one partition wait longer than the rest?
     */
    synchronized Map<Integer, long[]> latenciesByPartition(int phaseId, long from, long to) {
        Map<Integer, long[]> out = new java.util.TreeMap<>();
        Map<Integer, Integer> counts = new java.util.HashMap<>();
        for (int i = 0; i < size; i++) {
            long scheduled = arrival[i] - latency[i];
            if (phase[i] == phaseId && scheduled >= from && scheduled < to) {
                long[] a = out.computeIfAbsent(partition[i], k -> new long[16]);
                int n = counts.merge(partition[i], 1, Integer::sum);
                if (n > a.length) {
                    a = Arrays.copyOf(a, a.length * 2);
                    out.put(partition[i], a);
                }
                a[n - 1] = latency[i];
            }
        }
        out.replaceAll((p, a) -> Arrays.copyOf(a, counts.get(p)));
        return out;
    }

    @Override
    public void close() throws InterruptedException {
        running = false;
        consumer.wakeup();
        thread.join(5000);
    }
}
