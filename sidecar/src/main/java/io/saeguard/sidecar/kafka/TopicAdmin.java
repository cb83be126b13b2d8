package io.saeguard.sidecar.kafka;

import io.saeguard.topics.catalog.TopicCatalog;
import io.saeguard.topics.catalog.TopicSpec;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.errors.TopicExistsException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Creates the catalogue's topics with their configs. Idempotent: a topic that already exists is
 * reported as such, not treated as an error (its configs are left alone).
 *
 * <p>On a cluster with fewer brokers than a topic's replication factor (the embedded broker has
 * one), replication and {@code min.insync.replicas} are lowered to what the cluster can hold, and
 * each such change is logged, so one {@code topics.yaml} serves development and production.
 */
public final class TopicAdmin {
    private static final Logger LOGGER = LoggerFactory.getLogger(TopicAdmin.class);
    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    /** What happened to one topic. */
    public enum Outcome {
        CREATED,
        EXISTS
    }

    /** The result for one topic: the name, the outcome, and the replication factor actually requested. */
    public record Result(TopicSpec spec, Outcome outcome, short replication, Map<String, String> configs) {
    }

    private TopicAdmin() {
    }

    /** Creates every topic of {@code catalog} that does not exist yet. */
    public static List<Result> createAll(Admin admin, TopicCatalog catalog) throws InterruptedException, TimeoutException {
        int brokers;
        try {
            brokers = admin.describeCluster().nodes().get(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS).size();
        } catch (ExecutionException e) {
            throw new IllegalStateException("cannot reach the Kafka cluster: " + e.getCause().getMessage(), e.getCause());
        }
        List<NewTopic> requests = new ArrayList<>();
        Map<String, Result> planned = new HashMap<>();
        List<String> lowered = new ArrayList<>();
        for (TopicSpec spec : catalog.all()) {
            short replication = (short) Math.min(spec.replication(), brokers);
            Map<String, String> configs = new HashMap<>(spec.configs());
            String minIsr = configs.get("min.insync.replicas");
            if (minIsr != null && Integer.parseInt(minIsr) > replication) {
                configs.put("min.insync.replicas", Short.toString(replication));
            }
            if (replication != spec.replication()) {
                lowered.add(spec.name() + " " + spec.replication() + "->" + replication);
            }
            requests.add(new NewTopic(spec.name(), spec.partitions(), replication).configs(configs));
            planned.put(spec.name(), new Result(spec, Outcome.CREATED, replication, Map.copyOf(configs)));
        }
        if (!lowered.isEmpty()) {
            LOGGER.atWarn().addKeyValue("brokers", brokers).addKeyValue("topics", String.join(", ", lowered))
                    .log("cluster has fewer brokers than topics.yaml's replication factors: lowered replication and min.insync.replicas to fit");
        }
        CreateTopicsResult created = admin.createTopics(requests);
        List<Result> results = new ArrayList<>();
        for (TopicSpec spec : catalog.all()) {
            Result plan = planned.get(spec.name());
            try {
                created.values().get(spec.name()).get(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
                results.add(plan);
            } catch (ExecutionException e) {
                if (e.getCause() instanceof TopicExistsException) {
                    results.add(new Result(spec, Outcome.EXISTS, plan.replication(), plan.configs()));
                } else {
                    throw new IllegalStateException("creating topic " + spec.name() + " failed: " + e.getCause().getMessage(), e.getCause());
                }
            }
        }
        return results;
    }
}
