package io.saeguard.sidecar.cli;

import io.saeguard.sidecar.kafka.GrouplessConsumer;
import io.saeguard.sidecar.review.ReviewExport;
import io.saeguard.topics.catalog.TopicCatalog;
import io.saeguard.topics.catalog.TopicRole;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.Callable;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code saeguard reviews}: the reviewers' verdicts on alerts (the reviews topic). */
@Command(name = "reviews", mixinStandardHelpOptions = true, description = "Works with the reviewers' verdicts on alerts.",
        subcommands = {ReviewsCommand.Export.class})
final class ReviewsCommand implements Runnable {
    @Override
    public void run() {
        throw new picocli.CommandLine.ParameterException(new picocli.CommandLine(this), "give a subcommand: export");
    }

    /** {@code saeguard reviews export}. */
    @Command(name = "export", mixinStandardHelpOptions = true,
            description = {"Writes the reviewed alerts as labelled JSONL, the input of 'saeguard eval --data' and 'saeguard select --data'.",
                    "true_positive -> \"label\": true, false_positive -> \"label\": false (a hard negative), unsure -> skipped.",
                    "Each line: text (the request's prompt event), label, group (= the detector), detector, alert_id, verdict, reviewer, time."})
    static final class Export implements Callable<Integer> {
        @Option(names = "--bootstrap", required = true, description = "Kafka bootstrap servers, HOST:PORT[,HOST:PORT...]")
        String bootstrap;

        @Option(names = "--from", required = true, description = "first verdict time: ISO-8601 instant (2026-12-01T09:00:00Z), date (UTC), or epoch ms")
        String from;

        @Option(names = "--to", description = "verdicts before this time (default: now); same forms as --from")
        String to;

        @Option(names = "--out", required = true, description = "JSONL file to write")
        Path out;

        @Option(names = "--activations", description = "also write the exported requests' activation records here, per detector: "
                + "DETECTOR.positive.safetensors and DETECTOR.negative.safetensors (select --positive/--negative)")
        Path activations;

        @Option(names = "--topic", description = "topic name for a role, ROLE=NAME (reviews, alerts, prompts, activations; repeatable; default: topics.yaml's names)")
        Map<String, String> topicNames = new HashMap<>();

        @Option(names = "--consumer-property", description = "extra Kafka consumer property KEY=VALUE (repeatable)")
        Map<String, String> consumerProperties = new HashMap<>();

        @Option(names = "--timeout", defaultValue = "PT60S", description = "longest wait for the broker without progress (default ${DEFAULT-VALUE})")
        Duration timeout;

        @Override
        public Integer call() throws Exception {
            Instant start = Instant.ofEpochMilli(CommandLineTime.parse("--from", from));
            Instant end = to == null ? Instant.now() : Instant.ofEpochMilli(CommandLineTime.parse("--to", to));
            if (!start.isBefore(end)) {
                throw new IllegalArgumentException("--from " + from + " is not before --to " + (to == null ? "(now)" : to) + ": give an earlier --from");
            }
            Map<TopicRole, String> names = new EnumMap<>(TopicRole.class);
            topicNames.forEach((role, name) -> names.put(TopicRole.fromKey(role).orElseThrow(() -> new IllegalArgumentException("--topic "
                    + role + "=" + name + ": unknown role '" + role + "'; give reviews, alerts, prompts or activations")), name));
            TopicCatalog catalog = TopicCatalog.bundled().withNames(names);
            ReviewExport export = new ReviewExport(topic -> consumer(), new ReviewExport.Topics(catalog.get(TopicRole.REVIEWS).name(),
                    catalog.get(TopicRole.ALERTS).name(), catalog.get(TopicRole.PROMPTS).name(), catalog.get(TopicRole.ACTIVATIONS).name()), timeout);
            ReviewExport.Summary s = export.export(start, end, out, java.util.Optional.ofNullable(activations));
            System.out.printf("%s: %d positive (true_positive), %d negative (false_positive); skipped %d unsure and %d without text%n", out,
                    s.positives(), s.negatives(), s.unsure(), s.noText());
            for (Path f : s.activationFiles()) {
                System.out.println("wrote " + f);
            }
            if (activations != null && s.noActivations() > 0) {
                System.out.printf("%d exported examples have no activation records (prompt events, or past the activations topic's retention)%n",
                        s.noActivations());
            }
            return 0;
        }

        private KafkaConsumer<String, byte[]> consumer() {
            Map<String, Object> p = GrouplessConsumer.properties(consumerProperties, bootstrap,
                    "saeguard-reviews-export-" + UUID.randomUUID().toString().substring(0, 8));
            p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
            p.putIfAbsent(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, Integer.toString(16 * 1024 * 1024));
            return new KafkaConsumer<>(p, new StringDeserializer(), new ByteArrayDeserializer());
        }
    }
}
