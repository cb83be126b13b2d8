package io.saeguard.sidecar.pipeline;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.TopicPartition;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Exactly-once delivery (consume-transform-produce, KIP-98/KIP-447). Outputs are not sent when they
 * are emitted: they wait, per source partition and offset, until the poll thread runs
 * {@link #commit}, which sends, in one transaction, the outputs of every record inside the
 * contiguous finished prefix of each partition together with those offsets
 * ({@code sendOffsetsToTransaction} with the consumer's group metadata, so a zombie instance is
 * fenced). A record's outputs thus become visible to {@code read_committed} readers exactly when
 * its offset is committed: a crash before that means neither, and the record is processed again
 * without duplicates.
 *
 * <p>A failed transaction is aborted and the sink turns {@link #failed()}: the sidecar stops
 * committing, reports unready and recovers: {@link #reset} replaces the producer (same
 * transactional id, so {@code initTransactions} fences the old one and completes whatever it left
 * open), and the poll thread rewinds to the offsets the group committed.
 * {@link #emit} is thread-safe; {@link #commit}, {@link #drop}, {@link #reset} and {@link #close}
 * run on the poll thread (or after it stopped).
 */
final class TransactionalSink implements OutputSink {
    private static final Logger LOGGER = LoggerFactory.getLogger(TransactionalSink.class);

    private record Emitted(Source source, List<ProducerRecord<String, byte[]>> outputs, Runnable onDelivered) {
    }

    private final Supplier<Producer<String, byte[]>> producers;
    private final Generation generation;
    /** Written on the poll thread ({@link #reset}), read by the metrics scrape too. */
    private volatile Producer<String, byte[]> producer;
    private final ConcurrentLinkedQueue<Emitted> incoming = new ConcurrentLinkedQueue<>();
    private final Map<TopicPartition, TreeMap<Long, Emitted>> waiting = new HashMap<>();
    /** Outputs of no record ({@link Source#NO_OFFSET}): they go out in the next transaction, with or without offsets. */
    private final List<Emitted> unanchored = new ArrayList<>();
    private final AtomicBoolean failed = new AtomicBoolean();

    /**
     * @param producer the first producer, transactions initialised
     * @param producers makes a replacement with the same transactional id (transactions not yet initialised)
     */
    TransactionalSink(Producer<String, byte[]> producer, Supplier<Producer<String, byte[]>> producers, Generation generation) {
        this.producer = producer;
        this.producers = producers;
        this.generation = generation;
    }

    @Override
    public void emit(Source source, List<ProducerRecord<String, byte[]>> outputs, Runnable onDelivered) {
        if (!generation.stale(source.generation())) {
            incoming.add(new Emitted(source, List.copyOf(outputs), onDelivered));
        }
    }

    /**
     * Poll thread: moves emitted groups into {@code offsets} as finished, then commits one
     * transaction with the outputs and offsets of the finished prefix. Returns the tokens that left
     * the pipeline.
     */
    long commit(OffsetTracker offsets, Consumer<?, ?> consumer) {
        long released = 0;
        for (Emitted e; (e = incoming.poll()) != null; ) {
            if (generation.stale(e.source().generation())) {
                continue; // consumed again since the last recovery; its tokens left the count then
            }
            TopicPartition tp = e.source().partition();
            if (!offsets.tracks(tp)) {
                released += e.source().tokens(); // its partition was revoked: the new owner reprocesses it
                continue;
            }
            if (!e.source().hasOffset()) {
                unanchored.add(e);
                continue;
            }
            offsets.finished(tp, e.source().offset());
            waiting.computeIfAbsent(tp, k -> new TreeMap<>()).put(e.source().offset(), e);
        }
        if (failed.get()) {
            return released;
        }
        Map<TopicPartition, OffsetAndMetadata> toCommit = offsets.toCommit();
        if (toCommit.isEmpty() && unanchored.isEmpty()) {
            return released;
        }
        List<Emitted> batch = new ArrayList<>(unanchored);
        for (Map.Entry<TopicPartition, OffsetAndMetadata> c : toCommit.entrySet()) {
            TreeMap<Long, Emitted> w = waiting.get(c.getKey());
            if (w != null) {
                Map<Long, Emitted> head = w.headMap(c.getValue().offset());
                batch.addAll(head.values());
            }
        }
        try {
            producer.beginTransaction();
            for (Emitted e : batch) {
                for (ProducerRecord<String, byte[]> out : e.outputs()) {
                    producer.send(out);
                }
            }
            if (!toCommit.isEmpty()) {
                producer.sendOffsetsToTransaction(toCommit, consumer.groupMetadata());
            }
            producer.commitTransaction();
        } catch (KafkaException | IllegalStateException e) {
            failed.set(true);
            LOGGER.atError().log("transaction failed; aborting, commits stop until the pipeline rewinds to the committed offsets: {}",
                    e.toString());
            try {
                producer.abortTransaction();
            } catch (RuntimeException abort) {
                // e.g. a timed-out commit must be retried, not aborted: reset() replaces the producer, which settles it
                LOGGER.warn("abort failed too (the recovery replaces the producer): {}", abort.toString());
            }
            return released;
        }
        offsets.committed(toCommit);
        unanchored.clear();
        long tokens = released;
        for (Map.Entry<TopicPartition, OffsetAndMetadata> c : toCommit.entrySet()) {
            TreeMap<Long, Emitted> w = waiting.get(c.getKey());
            if (w != null) {
                w.headMap(c.getValue().offset()).clear();
            }
        }
        for (Emitted e : batch) {
            tokens += e.source().tokens();
            e.onDelivered().run();
        }
        return tokens;
    }

    @Override
    public void reset() {
        incoming.clear();
        waiting.clear();
        unanchored.clear();
        producer.close(Duration.ZERO);
        producer = producers.get();
        producer.initTransactions(); // fences the old producer; its open transaction is completed or aborted
        failed.set(false);
    }

    /** The current producer's own metrics (any thread): the producer is replaced on {@link #reset}. */
    Map<MetricName, ? extends Metric> producerMetrics() {
        return producer.metrics();
    }

    /** Closes the current producer (shutdown). */
    void close(Duration timeout) {
        producer.close(timeout);
    }

    /** Poll thread: forgets outputs of revoked partitions (the new owner reprocesses those records); returns their tokens. */
    long drop(Collection<TopicPartition> partitions) {
        long tokens = 0;
        for (TopicPartition tp : partitions) {
            unanchored.removeIf(e -> e.source().partition().equals(tp));
            TreeMap<Long, Emitted> w = waiting.remove(tp);
            if (w != null) {
                for (Emitted e : w.values()) {
                    tokens += e.source().tokens();
                }
            }
        }
        return tokens;
    }

    @Override
    public boolean failed() {
        return failed.get();
    }
}
