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
import org.apache.kafka.clients.admin.AdminClientConfig;
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
    /**
     * A guard against a call the admin client never completes, not the call's timeout: the admin
     * client's {@code default.api.timeout.ms} (60 s unless set) fails each call first, with a cause.
     */
    private static final Duration BACKSTOP = Duration.ofSeconds(120);
    /**
     * What a command line waits for a cluster: a user who typed a wrong bootstrap learns it within
     * seconds, not after the admin client's default minute.
     */
    public static final Duration COMMAND_TIMEOUT = Duration.ofSeconds(10);

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

    /**
     * The admin client properties of a command line: {@code bootstrap}, calls that give up after
     * {@link #COMMAND_TIMEOUT} (requests after half of it), and then the user's {@code overrides},
     * which win. A user's shorter {@code default.api.timeout.ms} also shortens the request timeout,
     * which the admin client refuses to be longer than an explicitly set call timeout.
     */
    public static Map<String, Object> commandLineProperties(String bootstrap, Map<String, String> overrides) {
        Map<String, Object> props = new HashMap<>();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        long apiTimeout = COMMAND_TIMEOUT.toMillis();
        String userApiTimeout = overrides.get(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG);
        if (userApiTimeout != null && userApiTimeout.strip().matches("\\d{1,18}")) {
            apiTimeout = Long.parseLong(userApiTimeout.strip());
        }
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, Long.toString(COMMAND_TIMEOUT.toMillis()));
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, Long.toString(Math.min(COMMAND_TIMEOUT.toMillis() / 2, apiTimeout)));
        props.putAll(overrides);
        return props;
    }

    /**
     * Creates every topic of {@code catalog} that does not exist yet.
     *
     * @throws ClusterUnreachableException when the cluster does not describe itself within the admin
     *     client's {@code default.api.timeout.ms}
     */
    public static List<Result> createAll(Admin admin, TopicCatalog catalog) throws InterruptedException {
        int brokers;
        try {
            brokers = admin.describeCluster().nodes().get(BACKSTOP.toMillis(), TimeUnit.MILLISECONDS).size();
        } catch (ExecutionException e) {
            throw new ClusterUnreachableException(messageOf(e.getCause()), e.getCause());
        } catch (TimeoutException e) {
            throw new ClusterUnreachableException("no answer within " + BACKSTOP.toSeconds() + " s", e);
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
                created.values().get(spec.name()).get(BACKSTOP.toMillis(), TimeUnit.MILLISECONDS);
                results.add(plan);
            } catch (ExecutionException e) {
                if (e.getCause() instanceof TopicExistsException) {
                    results.add(new Result(spec, Outcome.EXISTS, plan.replication(), plan.configs()));
                } else {
                    throw new IllegalStateException("creating topic " + spec.name() + " failed: " + messageOf(e.getCause()), e.getCause());
                }
            } catch (TimeoutException e) {
                throw new IllegalStateException("creating topic " + spec.name() + " failed: no answer within " + BACKSTOP.toSeconds() + " s", e);
            }
        }
        return results;
    }

    /** A Kafka error's message, or its class name where it has none. */
    private static String messageOf(Throwable t) {
        return t.getMessage() == null || t.getMessage().isBlank() ? t.getClass().getName() : t.getMessage();
    }

    /** The cluster did not answer: nothing was created. The message says what the admin client saw. */
    public static final class ClusterUnreachableException extends IllegalStateException {
        private static final long serialVersionUID = 1L;

        ClusterUnreachableException(String seen, Throwable cause) {
            super("cannot reach the Kafka cluster: " + seen, cause);
        }
    }
}
