package io.saeguard.sidecar.testing;

/** The broker a test talks to: a Testcontainers Kafka when Docker is there, the embedded one otherwise. */
public interface KafkaBroker {
    /** {@code host:port} for {@code bootstrap.servers} (and kcat's {@code -b}). */
    String bootstrap();

    /** {@code "testcontainers"} or {@code "embedded"}, for logs and skipping Docker-only checks. */
    String kind();
}
