package io.saeguard.sidecar.kafka;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicBoolean;
import kafka.server.KafkaConfig;
import kafka.server.KafkaRaftServer;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.utils.Time;
import org.apache.kafka.common.utils.Utils;
import org.apache.kafka.metadata.storage.Formatter;
import org.apache.kafka.server.common.MetadataVersion;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A real Apache Kafka broker in this JVM: one KRaft node acting as broker and controller, listening
 * on loopback only. It is the zero-setup default of {@code saeguard run}, the throwaway broker of
 * {@code saeguard broker}, and the broker of the integration tests when no Docker engine is present.
 * It is not a production deployment: one node, replication factor 1.
 *
 * <p>With a data directory it is persistent: a formatted directory is reused on the next start
 * (the cluster id is read back from {@code meta.properties}). Without one it formats a temporary
 * directory and deletes it on {@link #close()}.
 *
 * <p>Thread-safe: {@link #close()} may be called from any thread, more than once.
 */
public final class EmbeddedKafka implements AutoCloseable {
    private static final Logger LOGGER = LoggerFactory.getLogger(EmbeddedKafka.class);
    /** The largest record the embedded broker accepts; topic configs may lower it per topic. */
    public static final int MAX_MESSAGE_BYTES = 20 * 1024 * 1024;

    private final KafkaRaftServer server;
    private final String bootstrap;
    private final Path dataDir;
    private final boolean ephemeral;
    private final Duration startTime;
    private final AtomicBoolean closed = new AtomicBoolean();

    private EmbeddedKafka(KafkaRaftServer server, String bootstrap, Path dataDir, boolean ephemeral, Duration startTime) {
        this.server = server;
        this.bootstrap = bootstrap;
        this.dataDir = dataDir;
        this.ephemeral = ephemeral;
        this.startTime = startTime;
    }

    /** Starts a broker on a free loopback port with a temporary data directory. */
    public static EmbeddedKafka startEphemeral() {
        return start(0, Optional.empty(), Map.of());
    }

    /**
     * Starts a broker.
     *
     * @param port the client port on 127.0.0.1, or 0 for a free one
     * @param dataDir a persistent data directory, or empty for a temporary one deleted on close
     * @param overrides broker properties that replace the defaults below
     */
    public static EmbeddedKafka start(int port, Optional<Path> dataDir, Map<String, String> overrides) {
        Objects.requireNonNull(dataDir, "dataDir");
        long t0 = System.nanoTime();
        try {
            Path dir = dataDir.isPresent() ? Files.createDirectories(dataDir.get())
                    : Files.createTempDirectory("saeguard-kafka-");
            int brokerPort = port == 0 ? freePort() : port;
            int controllerPort = freePort();
            Map<String, Object> props = brokerProperties(dir, brokerPort, controllerPort);
            props.putAll(overrides);
            KafkaConfig config = new KafkaConfig(props, false);
            if (!Files.exists(dir.resolve("meta.properties"))) {
                format(dir, config);
            }
            KafkaRaftServer server = new KafkaRaftServer(config, Time.SYSTEM);
            // Returns once the broker is registered and unfenced, i.e. ready for clients.
            server.startup();
            String bootstrap = "127.0.0.1:" + brokerPort;
            Duration took = Duration.ofNanos(System.nanoTime() - t0);
            LOGGER.atInfo().addKeyValue("bootstrap", bootstrap).addKeyValue("dataDir", dir)
                    .addKeyValue("ephemeral", dataDir.isEmpty()).addKeyValue("startMs", took.toMillis())
                    .log("embedded Kafka broker started");
            return new EmbeddedKafka(server, bootstrap, dir, dataDir.isEmpty(), took);
        } catch (IOException e) {
            throw new UncheckedIOException("embedded Kafka: cannot prepare the data directory", e);
        } catch (RuntimeException e) {
            throw new IllegalStateException("embedded Kafka failed to start: " + e.getMessage(), e);
        }
    }

    static Map<String, Object> brokerProperties(Path dir, int brokerPort, int controllerPort) {
        Map<String, Object> p = new HashMap<>();
        p.put("process.roles", "broker,controller");
        p.put("node.id", "1");
        p.put("controller.quorum.voters", "1@127.0.0.1:" + controllerPort);
        p.put("listeners", "PLAINTEXT://127.0.0.1:" + brokerPort + ",CONTROLLER://127.0.0.1:" + controllerPort);
        p.put("advertised.listeners", "PLAINTEXT://127.0.0.1:" + brokerPort);
        p.put("controller.listener.names", "CONTROLLER");
        p.put("inter.broker.listener.name", "PLAINTEXT");
        p.put("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT");
        p.put("log.dirs", dir.toString());
        // One node: every internal topic has replication factor 1.
        p.put("offsets.topic.replication.factor", "1");
        p.put("offsets.topic.num.partitions", "5");
        p.put("transaction.state.log.replication.factor", "1");
        p.put("transaction.state.log.min.isr", "1");
        p.put("transaction.state.log.num.partitions", "5");
        p.put("share.coordinator.state.topic.replication.factor", "1");
        p.put("share.coordinator.state.topic.min.isr", "1");
        p.put("group.initial.rebalance.delay.ms", "0");
        // Topics come from topics.yaml (saeguard topics create); a typo must fail, not create a topic.
        p.put("auto.create.topics.enable", "false");
        p.put("message.max.bytes", Integer.toString(MAX_MESSAGE_BYTES));
        // The default 128 MiB dedupe buffer lives on the heap and OOMs a small broker at start.
        p.put("log.cleaner.dedupe.buffer.size", Integer.toString(2 * 1024 * 1024));
        return p;
    }

    private static void format(Path dir, KafkaConfig config) {
        try {
            new Formatter()
                    .setPrintStream(new PrintStream(OutputStream.nullOutputStream()))
                    .setNodeId(config.nodeId())
                    .setClusterId(Uuid.randomUuid().toString())
                    .setDirectories(List.of(dir.toString()))
                    .setMetadataLogDirectory(dir.toString())
                    .setControllerListenerName("CONTROLLER")
                    .setReleaseVersion(MetadataVersion.LATEST_PRODUCTION)
                    .setIgnoreFormatted(true)
                    .run();
        } catch (Exception e) {
            throw new IllegalStateException("embedded Kafka: formatting " + dir + " failed: " + e.getMessage(), e);
        }
    }

    /**
     * A free port on loopback. Another process may take it before the broker binds: a small race
     * that {@link #start} reports as a bind failure.
     */
    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            s.setReuseAddress(true);
            return s.getLocalPort();
        }
    }

    /** {@code host:port} for clients' {@code bootstrap.servers}. */
    public String bootstrap() {
        return bootstrap;
    }

    public Path dataDir() {
        return dataDir;
    }

    /** Wall time from {@link #start} to a broker ready for clients. */
    public Duration startTime() {
        return startTime;
    }

    /** The cluster id recorded in the data directory. */
    public Optional<String> clusterId() {
        Path meta = dataDir.resolve("meta.properties");
        Properties p = new Properties();
        try (InputStream in = Files.newInputStream(meta)) {
            p.load(in);
            return Optional.ofNullable(p.getProperty("cluster.id"));
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    /** Stops the broker cleanly and, for a temporary broker, deletes its data. */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        long t0 = System.nanoTime();
        server.shutdown();
        server.awaitShutdown();
        if (ephemeral) {
            try {
                Utils.delete(dataDir.toFile());
            } catch (IOException e) {
                LOGGER.atWarn().addKeyValue("dataDir", dataDir).log("could not delete the embedded broker's data: {}", e.getMessage());
            }
        }
        LOGGER.atInfo().addKeyValue("bootstrap", bootstrap)
                .addKeyValue("stopMs", Duration.ofNanos(System.nanoTime() - t0).toMillis())
                .log("embedded Kafka broker stopped");
    }
}
