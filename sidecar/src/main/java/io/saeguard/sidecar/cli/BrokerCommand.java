package io.saeguard.sidecar.cli;

import io.saeguard.sidecar.kafka.EmbeddedKafka;
import io.saeguard.sidecar.kafka.TopicAdmin;
import io.saeguard.topics.catalog.TopicCatalog;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code saeguard broker}: a throwaway single-node Kafka broker for demos and development. */
@Command(name = "broker", mixinStandardHelpOptions = true,
        description = {"Runs a real single-node Apache Kafka broker (KRaft) in this process on 127.0.0.1.",
                "It creates saeguard's topics and serves until interrupted (Ctrl-C / SIGTERM).",
                "For demos and development only: one node, replication factor 1."})
final class BrokerCommand implements Callable<Integer> {
    @Option(names = "--port", defaultValue = "9092", description = "client port on 127.0.0.1 (0 = any free port; default ${DEFAULT-VALUE})")
    int port;

    @Option(names = "--data", description = "persistent data directory, reused on restart (default: a temporary directory deleted on exit)")
    Path data;

    @Option(names = "--no-topics", description = "do not create saeguard's topics")
    boolean noTopics;

    @Option(names = "--set", paramLabel = "KEY=VALUE", description = "a broker property (repeatable), e.g. --set log.retention.check.interval.ms=30000")
    Map<String, String> properties = new LinkedHashMap<>();

    @Override
    public Integer call() throws Exception {
        EmbeddedKafka broker = EmbeddedKafka.start(port, Optional.ofNullable(data), properties);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            broker.close();
            stopped.countDown();
        }, "saeguard-broker-shutdown"));
        if (!noTopics) {
            try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap()))) {
                TopicsCommand.print(TopicAdmin.createAll(admin, TopicCatalog.bundled()));
            }
        }
        System.out.println("saeguard broker ready: bootstrap " + broker.bootstrap() + " (started in "
                + broker.startTime().toMillis() + " ms, data " + broker.dataDir() + ")");
        System.out.flush();
        stopped.await();
        return 0;
    }
}
