package io.saeguard.sidecar.kafka;

import static org.assertj.core.api.Assertions.assertThat;

import io.saeguard.sidecar.cli.Main;
import io.saeguard.sidecar.testing.CatalogTopicsAssert;
import io.saeguard.sidecar.testing.KafkaBroker;
import io.saeguard.sidecar.testing.KafkaBrokerExtension;
import io.saeguard.sidecar.testing.Ports;
import io.saeguard.topics.catalog.TopicCatalog;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/** {@code saeguard topics create} against a real broker, read back with the AdminClient. */
@ExtendWith(KafkaBrokerExtension.class)
class TopicsCreateIT {
    @TempDir
    Path dir;

    @Test
    void createdTopicsHaveTheConfigsOfTopicsYamlAndASecondRunReportsThemAsExisting(KafkaBroker kafka) throws Exception {
        // Given the repository's topics.yaml with names made unique to this test (the broker is shared)
        String prefix = "t" + UUID.randomUUID().toString().substring(0, 8) + ".";
        Path source = Path.of(System.getProperty("saeguard.topics.file", "../topics/topics.yaml"));
        Path file = dir.resolve("topics.yaml");
        Files.writeString(file, Files.readString(source).replace("name: saeguard.", "name: " + prefix + "saeguard."));
        TopicCatalog catalog = TopicCatalog.load(file);

        // When topics create runs twice
        String first = runCli("topics", "create", "--bootstrap", kafka.bootstrap(), "--file", file.toString());
        String second = runCli("topics", "create", "--bootstrap", kafka.bootstrap(), "--file", file.toString());

        // Then the first run created one per role, the second found them all
        int roles = io.saeguard.topics.catalog.TopicRole.values().length;
        assertThat(first.lines().filter(l -> l.startsWith("created"))).hasSize(roles);
        assertThat(second.lines().filter(l -> l.startsWith("exists"))).hasSize(roles);

        // And every topic's partitions and configs are those of the file
        CatalogTopicsAssert.assertClusterHasTopicsOf(kafka.bootstrap(), catalog);
    }

    @Test
    void unreachableBootstrapFailsWithANonZeroExitAndAClearMessage() throws Exception {
        // Given nothing listens on the port
        int port = Ports.free();

        // When topics create is pointed at it with a short timeout
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        PrintStream oldErr = System.err;
        int code;
        try {
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            code = Main.execute("topics", "create", "--bootstrap", "127.0.0.1:" + port,
                    "--admin-property", "default.api.timeout.ms=3000", "--admin-property", "request.timeout.ms=2000");
        } finally {
            System.setErr(oldErr);
        }

        // Then it fails and says it could not reach the cluster
        assertThat(code).isNotZero();
        assertThat(err.toString(StandardCharsets.UTF_8)).contains("cannot reach the Kafka cluster");
    }

    private static String runCli(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        PrintStream old = System.out;
        int code;
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            code = Main.execute(args);
        } finally {
            System.setOut(old);
        }
        assertThat(code).as("exit code of " + String.join(" ", args)).isZero();
        return out.toString(StandardCharsets.UTF_8);
    }
}
