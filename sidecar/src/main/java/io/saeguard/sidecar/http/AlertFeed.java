package io.saeguard.sidecar.http;

import io.saeguard.topics.events.Alert;
import io.saeguard.topics.events.EventCodec;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * The alerts this instance published, for the live page: the last {@value #KEEP} as JSON (replayed
 * to a page that connects) and a fan-out to connected pages. Alerts arrive from the producer's
 * callback thread once Kafka acknowledged them; listeners must not block (the HTTP API hops to its
 * own context). Thread-safe.
 */
public final class AlertFeed {
    static final int KEEP = 50;
    private static final EventCodec CODEC = new EventCodec();

    private final ArrayDeque<String> recent = new ArrayDeque<>();
    private final CopyOnWriteArrayList<Consumer<String>> listeners = new CopyOnWriteArrayList<>();

    /** Records and fans out alerts that were delivered to the alerts topic. */
    public void publish(List<Alert> alerts) {
        for (Alert a : alerts) {
            String json = new String(CODEC.encode(a), StandardCharsets.UTF_8);
            synchronized (recent) {
                if (recent.size() == KEEP) {
                    recent.removeFirst();
                }
                recent.addLast(json);
            }
            for (Consumer<String> l : listeners) {
                l.accept(json);
            }
        }
    }

    /** The last alerts, oldest first. */
    public List<String> recent() {
        synchronized (recent) {
            return List.copyOf(recent);
        }
    }

    /** Adds a listener; the returned handle removes it. */
    public Runnable subscribe(Consumer<String> listener) {
        listeners.add(listener);
        return () -> listeners.remove(listener);
    }
}
