package io.saeguard.sidecar.pipeline;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
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
 * committing and reports unready; a restart resumes from the last committed transaction.
 * {@link #emit} is thread-safe; {@link #commit} and {@link #drop} run on the poll thread only.
 */
final class TransactionalSink implements OutputSink {
    private static final Logger LOGGER = LoggerFactory.getLogger(TransactionalSink.class);

    private record Emitted(TopicPartition source, long offset, int tokens, List<ProducerRecord<String, byte[]>> outputs, Runnable onDelivered) {
    }

    private final Producer<String, byte[]> producer;
    private final ConcurrentLinkedQueue<Emitted> incoming = new ConcurrentLinkedQueue<>();
    private final Map<TopicPartition, TreeMap<Long, Emitted>> waiting = new HashMap<>();
    private final AtomicBoolean failed = new AtomicBoolean();

    TransactionalSink(Producer<String, byte[]> producer) {
        this.producer = producer;
    }

    @Override
    public void emit(TopicPartition source, long offset, int tokens, List<ProducerRecord<String, byte[]>> outputs, Runnable onDelivered) {
        incoming.add(new Emitted(source, offset, tokens, List.copyOf(outputs), onDelivered));
    }

    /**
     * Poll thread: moves emitted groups into {@code offsets} as finished, then commits one
     * transaction with the outputs and offsets of the finished prefix. Returns the tokens that left
     * the pipeline.
     */
    long commit(OffsetTracker offsets, Consumer<?, ?> consumer) {
        long released = 0;
        for (Emitted e; (e = incoming.poll()) != null; ) {
            if (!offsets.tracks(e.source())) {
                released += e.tokens(); // its partition was revoked: the new owner reprocesses it
                continue;
            }
            offsets.finished(e.source(), e.offset());
            waiting.computeIfAbsent(e.source(), k -> new TreeMap<>()).put(e.offset(), e);
        }
        if (failed.get()) {
            return released;
        }
        Map<TopicPartition, OffsetAndMetadata> toCommit = offsets.toCommit();
        if (toCommit.isEmpty()) {
            return released;
        }
        List<Emitted> batch = new ArrayList<>();
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
            producer.sendOffsetsToTransaction(toCommit, consumer.groupMetadata());
            producer.commitTransaction();
        } catch (KafkaException e) {
            failed.set(true);
            LOGGER.atError().log("transaction failed; aborting, no more commits (restart resumes from the last committed transaction): {}",
                    e.toString());
            try {
                producer.abortTransaction();
            } catch (KafkaException abort) {
                LOGGER.warn("abort failed too: {}", abort.toString());
            }
            return released;
        }
        offsets.committed(toCommit);
        long tokens = released;
        for (Map.Entry<TopicPartition, OffsetAndMetadata> c : toCommit.entrySet()) {
            TreeMap<Long, Emitted> w = waiting.get(c.getKey());
            if (w != null) {
                w.headMap(c.getValue().offset()).clear();
            }
        }
        for (Emitted e : batch) {
            tokens += e.tokens();
            e.onDelivered().run();
        }
        return tokens;
    }

    /** Poll thread: forgets outputs of revoked partitions (the new owner reprocesses those records); returns their tokens. */
    long drop(Collection<TopicPartition> partitions) {
        long tokens = 0;
        for (TopicPartition tp : partitions) {
            TreeMap<Long, Emitted> w = waiting.remove(tp);
            if (w != null) {
                for (Emitted e : w.values()) {
                    tokens += e.tokens();
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
