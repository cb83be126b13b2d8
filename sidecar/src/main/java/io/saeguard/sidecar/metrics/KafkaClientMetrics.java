package io.saeguard.sidecar.metrics;

import io.prometheus.metrics.model.registry.MultiCollector;
import io.prometheus.metrics.model.snapshots.CounterSnapshot;
import io.prometheus.metrics.model.snapshots.GaugeSnapshot;
import io.prometheus.metrics.model.snapshots.Labels;
import io.prometheus.metrics.model.snapshots.MetricSnapshot;
import io.prometheus.metrics.model.snapshots.MetricSnapshots;
import io.prometheus.metrics.model.snapshots.PrometheusNaming;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Exports the Kafka clients' own metrics (what each client keeps in {@code client.metrics()}: fetch
 * lag, request latencies, buffer use, ...) at every scrape, as strimzi-kafka-bridge does, so lag and
 * producer buffer come from the client, not from hand computation.
 *
 * <p>Names: {@code kafka_<kind>_<group>_<name>}, where the group loses its {@code -metrics} suffix
 * and a leading {@code <kind>-}, and anything outside {@code [a-zA-Z0-9_]} becomes {@code _}: the
 * consumer's {@code records-lag} in {@code consumer-fetch-manager-metrics} is
 * {@code kafka_consumer_fetch_manager_records_lag}. A metric named {@code *-total} (a cumulative
 * count) is a counter ({@code ..._total} in the exposition), every other one a gauge. Tags become
 * labels ({@code client-id} → {@code client_id}); only the tags Kafka bounds are accepted —
 * {@link #LABELS}: the client, the broker node, and the topics and partitions the client uses — and
 * a metric with any other tag is left out, so a client upgrade cannot add an unbounded label.
 * Values that are not numbers (versions, commit ids) and non-finite values (a windowed max with no
 * sample in its window is NaN or -Infinity) are left out, so sums over the series stay numbers.
 *
 * <p>The names pass {@code promtool check metrics} (PrometheusIT): a {@code ms} or {@code ns} word
 * becomes {@code seconds} and the value is scaled to seconds ({@code io-time-ns-total} is
 * {@code kafka_consumer_io_time_seconds_total}); a final {@code _count} (not a histogram's) becomes
 * {@code _number}; a metric without a description gets one naming it. Kafka's unsuffixed latencies
 * ({@code request-latency-avg}) stay in milliseconds, as Kafka documents them. The
 * {@code kafka-metrics-count} group (how many metrics the client registered) is left out.
 *
 * <p>The consumer's per-partition {@code records-lag} is also exported as
 * {@value Metrics#CONSUMER_LAG}{@code {topic,partition}}, the series the dashboards and alert rules
 * read (it was computed by the poll loop before).
 *
 * <p>Thread-safe: it runs on the scrape thread, and a Kafka client's {@code metrics()} is safe to
 * call from any thread (it reads the client's concurrent metrics registry; unlike the client's other
 * methods it takes no ownership of the client). A closed client has no metrics left and exports
 * nothing.
 */
public final class KafkaClientMetrics implements MultiCollector {
    private static final Logger LOGGER = LoggerFactory.getLogger(KafkaClientMetrics.class);

    /** The Kafka metric tags exported as labels; each is bounded by the deployment (clients, brokers, topics, partitions). */
    public static final Set<String> LABELS = Set.of("client-id", "node-id", "topic", "partition");
    private static final String FETCH_MANAGER_GROUP = "consumer-fetch-manager-metrics";
    private static final String RECORDS_LAG = "records-lag";

    /**
     * One client whose metrics are exported.
     *
     * @param kind {@code consumer} or {@code producer}: the name prefix after {@code kafka_}
     * @param metrics the client's metrics, read at each scrape ({@code client::metrics}, or the current client's where the
     *     client is replaced)
     */
    public record Client(String kind, Supplier<Map<MetricName, ? extends Metric>> metrics) {
    }

    private final List<Client> clients;
    private final Set<String> skippedLogged = ConcurrentHashMap.newKeySet();

    public KafkaClientMetrics(List<Client> clients) {
        this.clients = List.copyOf(clients);
    }

    @Override
    public MetricSnapshots collect() {
        // sorted by name so the exposition is stable
        Map<String, Family> families = new TreeMap<>();
        for (Client client : clients) {
            Map<MetricName, ? extends Metric> metrics;
            try {
                metrics = client.metrics().get();
            } catch (RuntimeException e) {
                LOGGER.atDebug().addKeyValue("kind", client.kind()).log("client metrics not readable: {}", e.toString());
                continue;
            }
            for (Map.Entry<MetricName, ? extends Metric> m : metrics.entrySet()) {
                add(families, client.kind(), m.getKey(), m.getValue());
            }
        }
        List<MetricSnapshot> snapshots = new ArrayList<>(families.size());
        families.forEach((name, f) -> snapshots.add(f.snapshot(name)));
        return new MetricSnapshots(snapshots);
    }

    private void add(Map<String, Family> families, String kind, MetricName name, Metric metric) {
        Object value;
        try {
            value = metric.metricValue();
        } catch (RuntimeException e) {
            return;
        }
        if (!(value instanceof Number number) || !Double.isFinite(number.doubleValue())) {
            return;
        }
        double v = number.doubleValue();
        for (String tag : name.tags().keySet()) {
            if (!LABELS.contains(tag)) {
                if (skippedLogged.add(name.group() + "/" + name.name() + "/" + tag)) {
                    LOGGER.atDebug().addKeyValue("group", name.group()).addKeyValue("metric", name.name()).addKeyValue("tag", tag)
                            .log("Kafka client metric left out: its tag is not one of the bounded labels");
                }
                return;
            }
        }
        if (name.group().equals("kafka-metrics-count")) {
            return;
        }
        boolean counter = name.name().endsWith("-total");
        String base = counter ? name.name().substring(0, name.name().length() - "-total".length()) : name.name();
        String promName = prometheusName(kind, name.group(), base);
        double scale = unitScale(name.name());
        Labels.Builder labels = Labels.builder();
        new TreeMap<>(name.tags()).forEach((k, val) -> labels.label(sanitize(k), val));
        String help = name.description().isBlank() ? "Kafka " + kind + " metric " + name.name() + " (" + name.group() + ")" : name.description();
        Family family = families.computeIfAbsent(promName, n -> new Family(counter, help));
        if (family.counter == counter) { // "x-total" and a gauge "x" in one group would clash: the first kept
            family.add(labels.build(), v * scale);
        }
        if ("consumer".equals(kind) && FETCH_MANAGER_GROUP.equals(name.group()) && RECORDS_LAG.equals(name.name())
                && name.tags().containsKey("topic") && name.tags().containsKey("partition")) {
            families.computeIfAbsent(Metrics.CONSUMER_LAG, n -> new Family(false, Metrics.CONSUMER_LAG_HELP))
                    .add(Labels.of("topic", name.tags().get("topic"), "partition", name.tags().get("partition")), v);
        }
    }

    /** {@code kafka_<kind>_<group>_<name>}: see the class comment. */
    static String prometheusName(String kind, String group, String name) {
        String g = group.endsWith("-metrics") ? group.substring(0, group.length() - "-metrics".length()) : group;
        if (g.equals(kind)) {
            g = "";
        } else if (g.startsWith(kind + "-")) {
            g = g.substring(kind.length() + 1);
        }
        String joined = sanitize(Metrics.KAFKA_CLIENT_PREFIX + kind + "_" + (g.isEmpty() ? "" : g + "_") + name);
        joined = ("_" + joined + "_").replace("_ms_", "_seconds_").replace("_ns_", "_seconds_");
        joined = joined.substring(1, joined.length() - 1);
        if (joined.endsWith("_count")) {
            joined = joined.substring(0, joined.length() - "_count".length()) + "_number";
        }
        // Strips a reserved suffix (_total, _info, ...) the exposition adds by type.
        return PrometheusNaming.sanitizeMetricName(joined);
    }

    /** The factor to seconds of a Kafka metric named with a {@code ms} or {@code ns} word, else 1. */
    static double unitScale(String kafkaName) {
        String n = "-" + kafkaName + "-";
        return n.contains("-ns-") ? 1e-9 : n.contains("-ms-") ? 1e-3 : 1;
    }

    private static String sanitize(String s) {
        StringBuilder sb = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            sb.append(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' ? c : '_');
        }
        return sb.toString();
    }

    /** The data points of one exported name; a label set seen twice (two clients with one client id) keeps its first value. */
    private static final class Family {
        final boolean counter;
        final String help;
        final Map<Labels, Double> points = new LinkedHashMap<>();
        final Set<Labels> seen = new HashSet<>();

        Family(boolean counter, String help) {
            this.counter = counter;
            this.help = help;
        }

        void add(Labels labels, double value) {
            if (seen.add(labels) && (!counter || value >= 0)) {
                points.put(labels, value);
            }
        }

        MetricSnapshot snapshot(String name) {
            if (counter) {
                CounterSnapshot.Builder b = CounterSnapshot.builder().name(name).help(help);
                points.forEach((l, v) -> b.dataPoint(CounterSnapshot.CounterDataPointSnapshot.builder().labels(l).value(v).build()));
                return b.build();
            }
            GaugeSnapshot.Builder b = GaugeSnapshot.builder().name(name).help(help);
            points.forEach((l, v) -> b.dataPoint(GaugeSnapshot.GaugeDataPointSnapshot.builder().labels(l).value(v).build()));
            return b.build();
        }
    }
}
