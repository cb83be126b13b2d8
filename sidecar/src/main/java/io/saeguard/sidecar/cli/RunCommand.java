package io.saeguard.sidecar.cli;

import io.saeguard.sidecar.http.HealthVerticle;
import io.saeguard.sidecar.kafka.EmbeddedKafka;
import io.saeguard.sidecar.kafka.TopicAdmin;
import io.saeguard.topics.catalog.TopicCatalog;
import io.vertx.core.Vertx;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code saeguard run}: the sidecar. With no bootstrap configured it starts the embedded broker
 * and creates the topics: the zero-setup default, not a production mode.
 *
 * <p>This is the runtime skeleton of the foundation issue: Kafka connectivity, topics, and the
 * health endpoints. The consume → encode → detect → decide pipeline is the sidecar issue's work.
 */
@Command(name = "run", mixinStandardHelpOptions = true, description = {"Runs the sidecar.",
        "Without --bootstrap (or SAEGUARD_KAFKA_BOOTSTRAP) it starts an embedded single-node Kafka broker."})
final class RunCommand implements Callable<Integer> {
    private static final Logger LOGGER = LoggerFactory.getLogger(RunCommand.class);

    @Option(names = "--bootstrap", defaultValue = "${env:SAEGUARD_KAFKA_BOOTSTRAP}",
            description = "Kafka bootstrap servers (env SAEGUARD_KAFKA_BOOTSTRAP); absent = embedded broker")
    String bootstrap;

    @Option(names = "--http-port", defaultValue = "8080", description = "HTTP port for health endpoints (default ${DEFAULT-VALUE})")
    int httpPort;

    @Option(names = "--http-host", defaultValue = "0.0.0.0", description = "HTTP bind address (default ${DEFAULT-VALUE})")
    String httpHost;

    @Override
    public Integer call() throws Exception {
        Optional<EmbeddedKafka> embedded = Optional.empty();
        String servers = bootstrap;
        if (servers == null || servers.isBlank()) {
            LOGGER.warn("************************************************************************");
            LOGGER.warn("* No kafka.bootstrap configured: starting an EMBEDDED single-node Kafka *");
            LOGGER.warn("* broker in this process. For trying saeguard out, NOT for production. *");
            LOGGER.warn("************************************************************************");
            EmbeddedKafka broker = EmbeddedKafka.startEphemeral();
            embedded = Optional.of(broker);
            servers = broker.bootstrap();
            try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, servers))) {
                TopicAdmin.createAll(admin, TopicCatalog.bundled());
            }
            LOGGER.atWarn().addKeyValue("bootstrap", servers).log("embedded Kafka broker is up, topics created");
        }
        AtomicBoolean ready = new AtomicBoolean();
        Vertx vertx = Vertx.vertx();
        HealthVerticle http = new HealthVerticle(httpHost, httpPort, ready::get);
        vertx.deployVerticle(http).toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
        ready.set(true);
        LOGGER.atInfo().addKeyValue("bootstrap", servers).addKeyValue("httpPort", http.actualPort())
                .addKeyValue("version", VersionProvider.version()).log("saeguard sidecar started");

        CountDownLatch stopped = new CountDownLatch(1);
        Optional<EmbeddedKafka> toClose = embedded;
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            // Written order: not-ready, stop intake, close.
            ready.set(false);
            try {
                vertx.close().toCompletionStage().toCompletableFuture().get(Duration.ofSeconds(10).toMillis(), TimeUnit.MILLISECONDS);
            } catch (Exception e) {
                LOGGER.warn("Vert.x did not close cleanly: {}", e.toString());
            }
            toClose.ifPresent(EmbeddedKafka::close);
            stopped.countDown();
        }, "saeguard-shutdown"));
        stopped.await();
        return 0;
    }
}
