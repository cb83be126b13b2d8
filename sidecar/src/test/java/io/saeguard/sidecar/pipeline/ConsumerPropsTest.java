package io.saeguard.sidecar.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import io.saeguard.sidecar.config.ConfigLoader;
import io.saeguard.sidecar.config.SidecarConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ConsumerPropsTest {
    @TempDir
    Path dir;

    @Test
    void theInputConsumerWaitsAtMostTwentyMillisecondsPerFetchAndLetsTheOsSizeItsReceiveBufferByDefault() throws Exception {
        SidecarConfig defaults = ConfigLoader.load(Optional.empty(), Map.of());

        assertThat(Pipeline.consumerProps(defaults, "localhost:9092")).containsEntry(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, "20")
                .containsEntry(ConsumerConfig.RECEIVE_BUFFER_CONFIG, "-1").containsEntry(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    }

    @Test
    void kafkaConsumerSettingsOverrideTheFetchWaitAndTheReceiveBuffer() throws Exception {
        Path file = dir.resolve("saeguard.yaml");
        Files.writeString(file, """
                kafka:
                  consumer:
                    fetch.max.wait.ms: 250
                    receive.buffer.bytes: 1048576
                """);
        SidecarConfig config = ConfigLoader.load(Optional.of(file), Map.of());

        Map<String, Object> props = Pipeline.consumerProps(config, "localhost:9092");
        assertThat(String.valueOf(props.get(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG))).isEqualTo("250");
        assertThat(String.valueOf(props.get(ConsumerConfig.RECEIVE_BUFFER_CONFIG))).isEqualTo("1048576");
    }
}
