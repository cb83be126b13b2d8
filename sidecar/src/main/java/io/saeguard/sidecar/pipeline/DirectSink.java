package io.saeguard.sidecar.pipeline;

import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * At-least-once delivery: sends each output with the idempotent producer ({@code acks=all}); once
 * all outputs of a record are acknowledged, reports it finished. A failed send leaves the record
 * unfinished, so its offset is never committed and it is processed again after a restart.
 */
final class DirectSink implements OutputSink {
    private static final Logger LOGGER = LoggerFactory.getLogger(DirectSink.class);

    private final Producer<String, byte[]> producer;
    private final Consumer<Ack> acks;
    private final AtomicBoolean failed = new AtomicBoolean();

    DirectSink(Producer<String, byte[]> producer, Consumer<Ack> acks) {
        this.producer = producer;
        this.acks = acks;
    }

    @Override
    public void emit(TopicPartition source, long offset, int tokens, List<ProducerRecord<String, byte[]>> outputs, Runnable onDelivered) {
        AtomicInteger remaining = new AtomicInteger(outputs.size());
        for (ProducerRecord<String, byte[]> out : outputs) {
            producer.send(out, (meta, e) -> {
                if (e != null) {
                    if (failed.compareAndSet(false, true)) {
                        LOGGER.atError().addKeyValue("topic", out.topic()).addKeyValue("sourceOffset", offset)
                                .log("an output write failed; no more commits, the record will be processed again after a restart: {}",
                                        e.toString());
                    }
                    return;
                }
                if (remaining.decrementAndGet() == 0) {
                    onDelivered.run();
                    acks.accept(new Ack(source, offset, tokens));
                }
            });
        }
    }

    @Override
    public boolean failed() {
        return failed.get();
    }
}
