package io.saeguard.sidecar.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.saeguard.sidecar.testing.CatalogTopicsAssert;
import io.saeguard.sidecar.testing.Ports;
import io.saeguard.sidecar.testing.SaeguardJar;
import io.saeguard.topics.catalog.TopicCatalog;
import io.saeguard.topics.catalog.TopicSpec;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.common.config.ConfigResource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code saeguard broker} and {@code saeguard topics create} as a user runs them: each a child
 * process of the fat jar, talking to each other over 127.0.0.1 only.
 */
class BrokerCommandIT {
    @TempDir
    Path dir;

    @Test
    void topicsCreateWithoutFileCreatesTheBundledTopicsOnTheBrokerWhichKeepsThemAcrossASigtermRestart() throws Exception {
        // Given a broker on a free port with a data directory and without its own topic creation
        TopicCatalog repository = TopicCatalog.load(Path.of(System.getProperty("saeguard.topics.file", "../topics/topics.yaml")));
        List<String> names = repository.all().stream().map(TopicSpec::name).sorted().collect(Collectors.toList());
        Path data = dir.resolve("data");
        int port = Ports.free();
        String bootstrap = "127.0.0.1:" + port;
        Path brokerLog = dir.resolve("broker.log");
        Process broker = startBroker(brokerLog, "--port", Integer.toString(port), "--data", data.toString(), "--no-topics");
        try {
            awaitReady(broker, brokerLog, bootstrap);

            // When topics create runs twice with no --file (the topics.yaml bundled in the jar)
            SaeguardJar.Completed first = SaeguardJar.run(dir, dir.resolve("create-1.log"), "topics", "create", "--bootstrap", bootstrap);
            SaeguardJar.Completed second = SaeguardJar.run(dir, dir.resolve("create-2.log"), "topics", "create", "--bootstrap", bootstrap);

            // Then the first run created every topic of the repository's topics.yaml, the second found each one, both exit 0
            assertThat(first.exitCode()).as(first.output()).isZero();
            assertThat(topicsReported(first.output(), "created")).as(first.output()).isEqualTo(names);
            assertThat(second.exitCode()).as(second.output()).isZero();
            assertThat(topicsReported(second.output(), "exists")).as(second.output()).isEqualTo(names);

            // And each has the partitions and configs of topics.yaml (replication lowered to the one node)
            CatalogTopicsAssert.assertClusterHasTopicsOf(bootstrap, repository);
        } finally {
            broker.destroy();
            assertThat(broker.waitFor(60, TimeUnit.SECONDS)).as("broker exited after SIGTERM").isTrue();
        }

        // And SIGTERM stopped it cleanly: the shutdown hook closed the broker (143 = 128 + SIGTERM)
        String stopped = Files.readString(brokerLog, StandardCharsets.UTF_8);
        assertThat(broker.exitValue()).as(stopped).isIn(0, 143);
        assertThat(stopped).contains("embedded Kafka broker stopped");
        // Kafka's log manager writes this marker only after a complete shutdown; without it the next start recovers the logs
        assertThat(data.resolve(".kafka_cleanshutdown")).as("Kafka's clean-shutdown marker in the data directory").exists();

        // And a broker restarted on the same data directory still has the topics: its own topic creation finds each one
        int again = Ports.free();
        Path restartLog = dir.resolve("broker-restart.log");
        Process restarted = startBroker(restartLog, "--port", Integer.toString(again), "--data", data.toString());
        try {
            awaitReady(restarted, restartLog, "127.0.0.1:" + again);
            String output = Files.readString(restartLog, StandardCharsets.UTF_8);
            assertThat(topicsReported(output, "exists")).as(output).isEqualTo(names);
            assertThat(topicsReported(output, "created")).as(output).isEmpty();
            CatalogTopicsAssert.assertClusterHasTopicsOf("127.0.0.1:" + again, repository);
        } finally {
            restarted.destroy();
            assertThat(restarted.waitFor(60, TimeUnit.SECONDS)).as("restarted broker exited after SIGTERM").isTrue();
        }
    }

    @Test
    void setPassesBrokerPropertiesThrough() throws Exception {
        // Given a broker started with a property the defaults do not set
        int port = Ports.free();
        String bootstrap = "127.0.0.1:" + port;
        Path brokerLog = dir.resolve("broker-set.log");
        Process broker = startBroker(brokerLog, "--port", Integer.toString(port), "--no-topics", "--set", "log.retention.check.interval.ms=12345");
        try {
            awaitReady(broker, brokerLog, bootstrap);

            // When its configuration is read back over the admin API
            try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
                ConfigResource node = new ConfigResource(ConfigResource.Type.BROKER, "1");
                Config config = admin.describeConfigs(List.of(node)).all().get(60, TimeUnit.SECONDS).get(node);

                // Then the broker runs with it
                assertThat(config.get("log.retention.check.interval.ms").value()).isEqualTo("12345");
            }
        } finally {
            broker.destroy();
            assertThat(broker.waitFor(60, TimeUnit.SECONDS)).as("broker exited after SIGTERM").isTrue();
        }
    }

    @Test
    void topicsCreateAgainstABootstrapWhereNoBrokerListensFailsWithinSecondsNamingTheBootstrap() throws Exception {
        // Given a port nothing listens on
        String bootstrap = "127.0.0.1:" + Ports.free();

        // When topics create is pointed at it
        long start = System.nanoTime();
        SaeguardJar.Completed run = SaeguardJar.run(dir, dir.resolve("create.log"), "topics", "create", "--bootstrap", bootstrap);
        Duration took = Duration.ofNanos(System.nanoTime() - start);

        // Then it fails under its full command name with a line naming the bootstrap and what to check, well before
        // the admin client's default minute (10 s of admin timeout plus the JVM's start)
        assertThat(run.exitCode()).as(run.output()).isEqualTo(1);
        assertThat(run.output()).contains("saeguard topics create: error: no Kafka cluster answered at --bootstrap " + bootstrap)
                .contains("check that a broker is running there").doesNotContain("null");
        assertThat(took).as(run.output()).isLessThan(Duration.ofSeconds(40));
    }

    private Process startBroker(Path log, String... options) throws IOException {
        String[] args = new String[options.length + 1];
        args[0] = "broker";
        System.arraycopy(options, 0, args, 1, options.length);
        return SaeguardJar.command(dir, "512m", log, args).start();
    }

    /** Waits for the broker's ready line; a broker that exits first fails the test with its output. */
    private static void awaitReady(Process broker, Path log, String bootstrap) {
        await().atMost(Duration.ofSeconds(120)).pollInterval(Duration.ofMillis(250)).until(() -> {
            String output = Files.readString(log, StandardCharsets.UTF_8);
            assertThat(broker.isAlive()).as("broker still running; output:%n%s", output).isTrue();
            return output.contains("saeguard broker ready: bootstrap " + bootstrap);
        });
    }

    /** The topic names of {@code topics create}'s report lines with the given outcome ("created" or "exists"), sorted. */
    private static List<String> topicsReported(String output, String outcome) {
        return output.lines().map(String::trim).filter(l -> l.startsWith(outcome + " "))
                .map(l -> l.split("\\s+")[1]).sorted().collect(Collectors.toList());
    }
}
