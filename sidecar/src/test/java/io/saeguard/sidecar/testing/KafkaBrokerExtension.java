package io.saeguard.sidecar.testing;

import io.saeguard.sidecar.kafka.EmbeddedKafka;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolver;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.testcontainers.DockerClientFactory;
import org.testcontainers.kafka.KafkaContainer;

/**
 * Gives a test a real Kafka broker, injected as a {@link KafkaBroker} parameter. One broker serves
 * the whole test JVM and is closed after the last test. It is Testcontainers' Kafka when a Docker
 * engine answers, otherwise the in-process KRaft broker ({@link EmbeddedKafka}); which one was
 * chosen is logged, so a silent fallback cannot hide. {@code -Dsaeguard.test.kafka=embedded}
 * forces the in-process broker.
 *
 * <p>Tests share the broker: use unique topic names and group ids per test.
 */
public final class KafkaBrokerExtension implements ParameterResolver {
    private static final Logger LOGGER = LoggerFactory.getLogger(KafkaBrokerExtension.class);
    private static final String KEY = KafkaBrokerExtension.class.getName();
    static final String DOCKER_IMAGE = "apache/kafka-native:4.1.1";

    @Override
    public boolean supportsParameter(ParameterContext parameter, ExtensionContext context) {
        return parameter.getParameter().getType() == KafkaBroker.class;
    }

    @Override
    public Object resolveParameter(ParameterContext parameter, ExtensionContext context) {
        return context.getRoot().getStore(ExtensionContext.Namespace.GLOBAL)
                .getOrComputeIfAbsent(KEY, k -> start(), SharedBroker.class);
    }

    private static SharedBroker start() {
        boolean forceEmbedded = "embedded".equals(System.getProperty("saeguard.test.kafka"));
        if (!forceEmbedded && dockerAvailable()) {
            KafkaContainer container = new KafkaContainer(DOCKER_IMAGE);
            container.start();
            LOGGER.info("test broker: Testcontainers {} at {}", DOCKER_IMAGE, container.getBootstrapServers());
            return new SharedBroker(container.getBootstrapServers(), "testcontainers", container::stop);
        }
        EmbeddedKafka broker = EmbeddedKafka.startEphemeral();
        LOGGER.info("test broker: embedded KRaft at {} (started in {} ms, heap used {} MiB)", broker.bootstrap(),
                broker.startTime().toMillis(), usedHeapMiB());
        return new SharedBroker(broker.bootstrap(), "embedded", broker::close);
    }

    private static long usedHeapMiB() {
        Runtime rt = Runtime.getRuntime();
        return (rt.totalMemory() - rt.freeMemory()) >> 20;
    }

    private static boolean dockerAvailable() {
        try {
            return DockerClientFactory.instance().isDockerAvailable();
        } catch (RuntimeException | LinkageError e) {
            return false;
        }
    }

    /** The per-JVM broker; JUnit closes it (AutoCloseable in the root store) after the last test. */
    static final class SharedBroker implements KafkaBroker, AutoCloseable {
        private final String bootstrap;
        private final String kind;
        private final Runnable stop;

        SharedBroker(String bootstrap, String kind, Runnable stop) {
            this.bootstrap = bootstrap;
            this.kind = kind;
            this.stop = stop;
        }

        @Override
        public String bootstrap() {
            return bootstrap;
        }

        @Override
        public String kind() {
            return kind;
        }

        @Override
        public void close() {
            stop.run();
        }
    }
}
