package io.saeguard.sidecar.pipeline;

import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * At-least-once delivery: sends each output with the idempotent producer ({@code acks=all}); once
 * all outputs of a record are acknowledged, reports it finished. A failed send leaves the record
 * unfinished, so its offset is never committed; the sink turns {@link #failed()} and the poll
 * thread recovers by rewinding to the committed offsets, so the record is processed again.
 */
final class DirectSink implements OutputSink {
    private static final Logger LOGGER = LoggerFactory.getLogger(DirectSink.class);

    private final Producer<String, byte[]> producer;
    private final Consumer<Source> acks;
    private final Generation generation;
    private final AtomicBoolean failed = new AtomicBoolean();

    DirectSink(Producer<String, byte[]> producer, Consumer<Source> acks, Generation generation) {
        this.producer = producer;
        this.acks = acks;
        this.generation = generation;
    }

    @Override
    public void emit(Source source, List<ProducerRecord<String, byte[]>> outputs, Runnable onDelivered) {
        if (generation.stale(source.generation())) {
            return; // consumed again since the last recovery
        }
        AtomicInteger remaining = new AtomicInteger(outputs.size());
        for (ProducerRecord<String, byte[]> out : outputs) {
            producer.send(out, (meta, e) -> {
                if (e != null) {
                    if (!generation.stale(source.generation()) && failed.compareAndSet(false, true)) {
                        LOGGER.atError().addKeyValue("topic", out.topic()).addKeyValue("sourceOffset", source.offset())
                                .log("an output write failed; commits stop until the pipeline rewinds to the committed offsets: {}",
                                        e.toString());
                    }
                    return;
                }
                if (remaining.decrementAndGet() == 0) {
                    onDelivered.run();
                    acks.accept(source);
                }
            });
        }
    }

    @Override
    public boolean failed() {
        return failed.get();
    }

    @Override
    public void reset() {
        // The idempotent producer survives a failed batch: it bumps its epoch and goes on (KIP-360).
        failed.set(false);
    }
}
