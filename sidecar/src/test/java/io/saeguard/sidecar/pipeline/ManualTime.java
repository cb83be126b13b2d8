package io.saeguard.sidecar.pipeline;

import java.util.function.Supplier;
import org.apache.kafka.common.utils.Time;

/**
 * A clock that moves only when told ({@link #advanceMillis}) or when code under test sleeps on it
 * (a sleep returns at once, the clock that much later), so deadlines, intervals and backoffs are
 * tested without waiting. Single-threaded use.
 */
final class ManualTime implements Time {
    private long nanos;

    ManualTime(long startMillis) {
        this.nanos = startMillis * 1_000_000L;
    }

    void advanceMillis(long millis) {
        nanos += millis * 1_000_000L;
    }

    @Override
    public long milliseconds() {
        return nanos / 1_000_000L;
    }

    @Override
    public long nanoseconds() {
        return nanos;
    }

    @Override
    public void sleep(long ms) {
        advanceMillis(ms);
    }

    @Override
    public void waitObject(Object obj, Supplier<Boolean> condition, long deadlineMs) {
        if (!condition.get()) {
            nanos = Math.max(nanos, deadlineMs * 1_000_000L);
            throw new org.apache.kafka.common.errors.TimeoutException("condition not met by " + deadlineMs + " ms (manual clock)");
        }
    }
}
