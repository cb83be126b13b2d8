package io.saeguard.sidecar.testing;

import java.time.Duration;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.MockConsumer;

/**
 * A {@link MockConsumer} whose empty polls wait a little, as a real consumer waits for data: a reader thread polling the
 * plain mock would spin on a shared CPU.
 */
public final class WaitingMockConsumer extends MockConsumer<String, byte[]> {
    public WaitingMockConsumer() {
        super("earliest");
    }

    @Override
    public synchronized ConsumerRecords<String, byte[]> poll(Duration timeout) {
        ConsumerRecords<String, byte[]> r = super.poll(timeout);
        if (r.isEmpty()) {
            try {
                wait(5);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        return r;
    }
}
