package io.saeguard.sidecar.cli;

import io.saeguard.sidecar.config.ConfigException;
import io.saeguard.sidecar.config.ConfigLoader;
import io.saeguard.sidecar.config.SidecarConfig;
import io.saeguard.sidecar.app.Sidecar;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.core.config.Configurator;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code saeguard run}: the sidecar. With no {@code kafka.bootstrap} configured it starts the
 * embedded broker and creates the topics: the zero-setup default, not a production mode.
 * SIGTERM (or Ctrl-C) shuts it down in order: not-ready, stop fetching, drain, commit, close.
 */
@Command(name = "run", mixinStandardHelpOptions = true, description = {"Runs the sidecar.",
        "Config: --config FILE (YAML, see README) plus SAEGUARD_* environment overrides",
        "(e.g. SAEGUARD_KAFKA_BOOTSTRAP, SAEGUARD_HTTP_PORT). Without --config it runs the built-in MiniLM detector catalog",
        "(toxicity, refusal, harmful-request, computers on text). Without kafka.bootstrap it starts an embedded Kafka broker."})
final class RunCommand implements Callable<Integer> {
    private static final org.slf4j.Logger LOGGER = org.slf4j.LoggerFactory.getLogger(RunCommand.class);

    @Option(names = "--config", description = "YAML config file (default: the built-in MiniLM detector catalog, "
            + "detectors/catalog/minilm/saeguard.yaml; saeguard.jar only, the production saeguard-server.jar leaves it out)")
    Path config;

    @Override
    public Integer call() throws Exception {
        // log4j2.xml quiets DJL for the one-shot commands; the service keeps its INFO lines (native extraction, threads).
        Configurator.setLevel("ai.djl", Level.INFO);
        Path file = config;
        if (file == null) {
            if (!DefaultCatalog.bundled()) {
                throw new ConfigException(DefaultCatalog.ABSENT);
            }
            Path dir = Files.createTempDirectory("saeguard-catalog-");
            file = DefaultCatalog.extract(dir);
            Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteTree(dir), "saeguard-catalog-cleanup"));
            LOGGER.atInfo().addKeyValue("dir", dir).log("no --config: running the built-in MiniLM detector catalog (toxicity, refusal, "
                    + "harmful-request, computers); POST /v1/check {\"text\": ...} or publish prompt events to decide text");
        }
        SidecarConfig cfg = ConfigLoader.load(Optional.of(file));
        Sidecar sidecar = Sidecar.start(cfg);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            sidecar.close();
            stopped.countDown();
            org.apache.logging.log4j.LogManager.shutdown();
        }, "saeguard-shutdown"));
        stopped.await();
        return 0;
    }

    private static void deleteTree(Path dir) {
        try (java.util.stream.Stream<Path> files = Files.walk(dir)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (java.io.IOException e) {
            // best effort: a temporary directory
        }
    }
}
