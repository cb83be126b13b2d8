package io.saeguard.sidecar.cli;

import io.saeguard.sidecar.kafka.TopicAdmin;
import io.saeguard.topics.catalog.TopicCatalog;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code saeguard topics ...}: manage the wire contract's topics. */
@Command(name = "topics", mixinStandardHelpOptions = true, description = "Manages saeguard's Kafka topics.",
        subcommands = TopicsCommand.Create.class)
final class TopicsCommand {

    static void print(List<TopicAdmin.Result> results) {
        for (TopicAdmin.Result r : results) {
            System.out.printf("%-8s %-24s partitions=%d replication=%d %s%n",
                    r.outcome() == TopicAdmin.Outcome.CREATED ? "created" : "exists", r.spec().name(),
                    r.spec().partitions(), r.replication(), new java.util.TreeMap<>(r.configs()));
        }
        System.out.flush();
    }

    /** {@code saeguard topics create}. */
    @Command(name = "create", mixinStandardHelpOptions = true,
            description = {"Creates the topics of topics.yaml with their configs.",
                    "Idempotent: existing topics are reported and left as they are."})
    static final class Create implements Callable<Integer> {
        @Option(names = "--bootstrap", required = true, description = "Kafka bootstrap servers, HOST:PORT[,HOST:PORT...]")
        String bootstrap;

        @Option(names = "--file", description = "topic catalogue (default: the topics.yaml bundled in the jar)")
        Path file;

        @Option(names = "--admin-property", description = "extra Kafka admin client property KEY=VALUE (repeatable)")
        Map<String, String> adminProperties = new HashMap<>();

        @Override
        public Integer call() throws Exception {
            TopicCatalog catalog = file == null ? TopicCatalog.bundled() : TopicCatalog.load(file);
            Map<String, Object> props = TopicAdmin.commandLineProperties(bootstrap, adminProperties);
            try (Admin admin = Admin.create(props)) {
                print(TopicAdmin.createAll(admin, catalog));
            } catch (TopicAdmin.ClusterUnreachableException e) {
                throw new IllegalStateException("no Kafka cluster answered at --bootstrap " + bootstrap + " within "
                        + props.get(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG) + " ms (" + e.getMessage() + "): check that a broker "
                        + "is running there ('saeguard broker' starts one), that this host reaches that address and the listeners the "
                        + "broker advertises, and the security settings (--admin-property security.protocol=...)", e);
            }
            return 0;
        }
    }
}
