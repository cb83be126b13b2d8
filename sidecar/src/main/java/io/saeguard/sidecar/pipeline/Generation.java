package io.saeguard.sidecar.pipeline;

import java.util.concurrent.atomic.AtomicLong;

/**
 * The pipeline's generation. Every consumed record is stamped with the generation current when the
 * poll thread took it. A recovery (after an output could not be delivered) rewinds the partitions
 * to their committed offsets and advances the generation: work of older generations still inside
 * the engine or the producer is then stale — not encoded, not sent, its acknowledgements ignored —
 * because those records are consumed again. Thread-safe.
 */
final class Generation {
    private final AtomicLong current = new AtomicLong();

    long current() {
        return current.get();
    }

    boolean stale(long generation) {
        return generation < current.get();
    }

    long advance() {
        return current.incrementAndGet();
    }
}
