package io.saeguard.sidecar.kafka;

import java.util.HashMap;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerConfig;

/**
 * The properties of a consumer that reads without a consumer group: it is {@code assign}ed its partitions, so no
 * group's offsets or membership change, and it commits nothing. Used by every reader that runs beside production or
 * that each replica runs for itself (the review and alert logs, the detector registry, history readers, reviews export).
 */
public final class GrouplessConsumer {
    private GrouplessConsumer() {
    }

    /**
     * {@code base} (the configured or given consumer properties: security settings, fetch sizes) without
     * {@code group.id} and {@code group.instance.id}, with {@code bootstrap}, {@code clientId}, no auto commit and
     * {@code auto.offset.reset=earliest}. Isolation is the caller's: {@code read_committed} wherever transactional
     * outputs are read.
     */
    public static Map<String, Object> properties(Map<String, ?> base, String bootstrap, String clientId) {
        Map<String, Object> p = new HashMap<>(base);
        p.remove(ConsumerConfig.GROUP_ID_CONFIG);
        p.remove(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG);
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        return p;
    }
}
