package io.saeguard.detectors;

import java.time.Duration;
import java.util.Objects;

/**
 * Bounds on the per-request state the {@link DetectorEngine} keeps (docs/architecture.md#detectors: in memory, with a
 * TTL and a hard cap).
 *
 * @param ttl         a request idle (no chunk) for at least this long is dropped by
 *                    {@link DetectorEngine#evictExpired(long)}; positive
 * @param maxRequests hard cap on requests held at once; when a new request would exceed it, the least
 *                    recently used one is evicted and counted ({@link DetectorEngine#capEvictions()}); {@code >= 1}
 */
public record StateLimits(Duration ttl, int maxRequests) {
    public StateLimits {
        Objects.requireNonNull(ttl, "ttl");
        if (ttl.isNegative() || ttl.isZero()) {
            throw new IllegalArgumentException("ttl must be positive, got " + ttl);
        }
        if (maxRequests < 1) {
            throw new IllegalArgumentException("maxRequests must be >= 1, got " + maxRequests);
        }
    }
}
