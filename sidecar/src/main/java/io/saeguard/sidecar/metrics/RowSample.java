package io.saeguard.sidecar.metrics;

import java.util.Objects;
import java.util.Random;

/**
 * Rows of an SAE's input drawn for a metric: each token of a batch with probability {@code rate} while fewer than
 * {@code capacity} are pending, copied aside with their stream positions, to be processed together later (a call on
 * the device costs about the same for 1 row as for 64). {@link FvuSampler} and {@link FullCodeSampler} each keep one.
 *
 * <p>Not thread-safe: the engine thread owns it.
 */
final class RowSample {
    private final int dIn;
    private final int capacity;
    private double rate;
    private final Random random;
    private final float[] rows;
    private final long[] positions;
    private int count;
    private long firstNanos; // when row 0 was drawn

    /** @param rate the chance each token is drawn; 0 turns sampling off (and allocates nothing) */
    RowSample(int dIn, int capacity, double rate, Random random) {
        this.dIn = dIn;
        this.capacity = capacity;
        this.rate = rate;
        this.random = Objects.requireNonNull(random, "random");
        this.rows = rate > 0 ? new float[capacity * dIn] : new float[0];
        this.positions = rate > 0 ? new long[capacity] : new long[0];
    }

    /**
     * Draws from {@code tokens} rows of {@code x} ({@code [n, d_in]}) starting at row {@code fromRow}.
     *
     * @param firstPosition the stream position of row {@code fromRow}
     * @return whether {@code capacity} rows are pending now
     */
    boolean draw(float[] x, int fromRow, int tokens, long firstPosition, long nowNanos) {
        if (rate <= 0) {
            return false;
        }
        for (int t = 0; t < tokens && count < capacity; t++) {
            if (random.nextDouble() < rate) {
                System.arraycopy(x, (fromRow + t) * dIn, rows, count * dIn, dIn);
                positions[count] = firstPosition + t;
                if (count++ == 0) {
                    firstNanos = nowNanos;
                }
            }
        }
        return count == capacity;
    }

    /** Changes the chance each token is drawn from now on; a sample created with rate 0 stays off. */
    void rate(double newRate) {
        if (!(newRate > 0 && newRate <= 1)) {
            throw new IllegalArgumentException("rate must be in (0, 1]: " + newRate);
        }
        if (rows.length > 0) { // allocated only when created on
            rate = newRate;
        }
    }

    /** Rows pending. */
    int pending() {
        return count;
    }

    /** Whether rows are pending and the oldest was drawn at least {@code waitNanos} ago. */
    boolean waited(long nowNanos, long waitNanos) {
        return count > 0 && nowNanos - firstNanos >= waitNanos;
    }

    /** Empties the sample; returns how many rows it held (the first that many of {@link #rows()} and {@link #positions()}). */
    int take() {
        int n = count;
        count = 0;
        return n;
    }

    /** The row buffer, {@code [capacity, d_in]}; valid up to the count {@link #take()} returned, until the next draw. */
    float[] rows() {
        return rows;
    }

    /** The drawn rows' stream positions. */
    long[] positions() {
        return positions;
    }
}
