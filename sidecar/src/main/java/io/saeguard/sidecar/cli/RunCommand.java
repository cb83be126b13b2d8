package io.saeguard.sidecar.cli;

import io.saeguard.sidecar.config.ConfigLoader;
import io.saeguard.sidecar.config.SidecarConfig;
import io.saeguard.sidecar.app.Sidecar;
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
        "(e.g. SAEGUARD_KAFKA_BOOTSTRAP, SAEGUARD_HTTP_PORT). Without kafka.bootstrap it starts an embedded Kafka broker."})
final class RunCommand implements Callable<Integer> {
    @Option(names = "--config", description = "YAML config file (default: none, i.e. defaults and environment only)")
    Path config;

    @Override
    public Integer call() throws Exception {
        // log4j2.xml quiets DJL for the one-shot commands; the service keeps its INFO lines (native extraction, threads).
        Configurator.setLevel("ai.djl", Level.INFO);
        SidecarConfig cfg = ConfigLoader.load(Optional.ofNullable(config));
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
}
