package io.saeguard.detectors;

import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.function.Predicate;

/**
 * Per-request state in memory, in least-recently-used order, with a hard cap (evicting the least
 * recently used request) and a TTL sweep (docs/architecture.md#detectors). Not thread-safe: owned by the engine thread.
 */
final class RequestStore {
    private final LinkedHashMap<String, RequestState> requests = new LinkedHashMap<>(64, 0.75f, true);
    private final int maxRequests;
    private final long ttlMillis;
    private long capEvictions;
    private long ttlEvictions;

    RequestStore(StateLimits limits) {
        this.maxRequests = limits.maxRequests();
        this.ttlMillis = limits.ttl().toMillis();
    }

    /** The request's state, created if absent (evicting the least recently used one at the cap); marks it seen now. */
    RequestState acquire(String requestId, long nowMillis) {
        RequestState s = requests.get(requestId);
        if (s == null) {
            if (requests.size() >= maxRequests) {
                Iterator<RequestState> eldest = requests.values().iterator();
                eldest.next();
                eldest.remove();
                capEvictions++;
            }
            s = new RequestState(requestId);
            requests.put(requestId, s);
        }
        s.lastSeenMillis = nowMillis;
        return s;
    }

    /** The request's state if held (its last-seen time untouched: a judge's verdict is not the request's traffic); null otherwise. */
    RequestState peek(String requestId) {
        return requests.get(requestId);
    }

    /** Holds {@code state}, replacing any state of its request (evicting the least recently used one at the cap). */
    void put(RequestState state) {
        if (!requests.containsKey(state.requestId) && requests.size() >= maxRequests) {
            Iterator<RequestState> eldest = requests.values().iterator();
            eldest.next();
            eldest.remove();
            capEvictions++;
        }
        requests.put(state.requestId, state);
    }

    void remove(String requestId) {
        requests.remove(requestId);
    }

    int forget(Predicate<String> requestId) {
        int before = requests.size();
        requests.keySet().removeIf(requestId);
        return before - requests.size();
    }

    int evictExpired(long nowMillis) {
        int before = requests.size();
        requests.values().removeIf(s -> nowMillis - s.lastSeenMillis >= ttlMillis);
        int n = before - requests.size();
        ttlEvictions += n;
        return n;
    }

    int size() {
        return requests.size();
    }

    long capEvictions() {
        return capEvictions;
    }

    long ttlEvictions() {
        return ttlEvictions;
    }
}
