package io.saeguard.detectors;

import java.util.Arrays;

/**
 * The request positions one detector has already folded into its aggregates, so that a position seen twice (a
 * record redelivered after a crash or a rebalance, a prefill checked over {@code /v1/check} and then published by
 * the hook) counts once (issue 19, item 4).
 *
 * <p><b>Representation.</b> {@code below}: every position {@code < below} was seen; above it, at most
 * {@link #MAX_RANGES} disjoint, non-adjacent half-open ranges {@code [start, end)}, sorted, each starting after
 * {@code below} (the chunks that arrived ahead of a gap). A request whose chunks arrive in order never has a range:
 * three longs and no array, whatever its length. Each range costs 16 bytes; the array holds at most 33 ranges for
 * a moment, so the whole costs at most about 560 bytes per detector per request.
 *
 * <p><b>Bound.</b> When a chunk would open a 33rd range, the lowest gap is given up: {@code below} moves to the end
 * of the lowest range, so positions that arrive later inside that gap are treated as seen and not counted (reported
 * by {@link #givenUp()}). A gap that old means a producer sent 32 later runs before it; undercounting a stray late
 * token is the lesser harm next to holding unbounded state per request.
 *
 * <p>Not thread-safe: owned by the engine thread with the rest of the request's state.
 */
final class CountedPositions {
    /** Most ranges remembered at once (see the class doc). */
    static final int MAX_RANGES = 32;
    private static final long[] NONE = new long[0];

    private long below;
    /** {@code [start0, end0, start1, end1, ...]}, sorted, disjoint, non-adjacent, {@code start0 > below}. */
    private long[] ranges = NONE;
    private int rangeCount;
    private long givenUp;

    /** Whether {@code position} was already counted. */
    boolean contains(long position) {
        if (position < below) {
            return true;
        }
        if (rangeCount == 0) {
            return false;
        }
        int lo = 0;
        int hi = rangeCount - 1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (position < ranges[2 * mid]) {
                hi = mid - 1;
            } else if (position >= ranges[2 * mid + 1]) {
                lo = mid + 1;
            } else {
                return true;
            }
        }
        return false;
    }

    /** Whether every position of {@code [start, end)} was already counted. */
    boolean containsAll(long start, long end) {
        if (start >= end || end <= below) {
            return true;
        }
        long from = Math.max(start, below);
        int i = firstEndingAfter(from);
        return i < rangeCount && ranges[2 * i] <= from && ranges[2 * i + 1] >= end;
    }

    /** Marks {@code [start, end)} as counted. */
    void add(long start, long end) {
        if (end <= below || start >= end) {
            return;
        }
        start = Math.max(start, below);
        // Ranges [i, j) touch or overlap [start, end) and merge with it.
        int i = firstEndingAfter(start - 1);
        int j = i;
        while (j < rangeCount && ranges[2 * j] <= end) {
            start = Math.min(start, ranges[2 * j]);
            end = Math.max(end, ranges[2 * j + 1]);
            j++;
        }
        if (start == below) {
            below = end;
            removeRanges(0, j);
            return;
        }
        if (i == j) {
            insertRange(i, start, end);
        } else {
            ranges[2 * i] = start;
            ranges[2 * i + 1] = end;
            removeRanges(i + 1, j);
        }
        if (rangeCount > MAX_RANGES) {
            givenUp += ranges[0] - below;
            below = ranges[1];
            removeRanges(0, 1);
        }
    }

    /** These positions as data (for a request snapshot). */
    RequestSnapshot.Positions snapshot() {
        return new RequestSnapshot.Positions(below, givenUp, Arrays.copyOf(ranges, 2 * rangeCount));
    }

    /**
     * Replaces these positions by a snapshot's.
     *
     * @throws IllegalArgumentException when the snapshot's ranges are not sorted, disjoint, non-adjacent, above
     *     {@code below} and at most {@link #MAX_RANGES} (a corrupted snapshot)
     */
    void restore(RequestSnapshot.Positions p) {
        long[] r = p.ranges();
        int n = r.length / 2;
        if (n > MAX_RANGES) {
            throw new IllegalArgumentException("counted positions have " + n + " ranges, more than " + MAX_RANGES);
        }
        long last = p.below();
        for (int i = 0; i < n; i++) {
            if (r[2 * i] <= last || r[2 * i + 1] <= r[2 * i]) {
                throw new IllegalArgumentException("counted positions' range " + i + " is not above the one before");
            }
            last = r[2 * i + 1];
        }
        below = p.below();
        givenUp = p.givenUp();
        ranges = n == 0 ? NONE : r;
        rangeCount = n;
    }

    /** Every position below this one was counted (or given up). */
    long below() {
        return below;
    }

    /** Gaps remembered now (ranges of positions counted above {@link #below()}). */
    int gaps() {
        return rangeCount;
    }

    /** Positions never counted because their gap was given up (see the class doc). */
    long givenUp() {
        return givenUp;
    }

    /** The index of the first range whose end is after {@code position}, or {@code rangeCount}. */
    private int firstEndingAfter(long position) {
        int lo = 0;
        int hi = rangeCount;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (ranges[2 * mid + 1] > position) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        return lo;
    }

    private void insertRange(int at, long start, long end) {
        if (2 * (rangeCount + 1) > ranges.length) {
            ranges = Arrays.copyOf(ranges, Math.min(2 * (MAX_RANGES + 1), Math.max(4, 2 * ranges.length)));
        }
        System.arraycopy(ranges, 2 * at, ranges, 2 * at + 2, 2 * (rangeCount - at));
        ranges[2 * at] = start;
        ranges[2 * at + 1] = end;
        rangeCount++;
    }

    private void removeRanges(int from, int to) {
        if (to <= from) {
            return;
        }
        System.arraycopy(ranges, 2 * to, ranges, 2 * from, 2 * (rangeCount - to));
        rangeCount -= to - from;
        if (rangeCount == 0) {
            ranges = NONE;
        }
    }
}
