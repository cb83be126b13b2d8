package io.saeguard.sidecar.kafka;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.junit.jupiter.api.Test;

class GrouplessConsumerTest {
    @Test
    void theGroupIsDroppedAndCommitsAreOffWhileOtherPropertiesPassThrough() {
        // Given configured properties that name a group and a security protocol
        Map<String, String> base = Map.of(ConsumerConfig.GROUP_ID_CONFIG, "saeguard", ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "replica-1",
                ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "true", "security.protocol", "SSL");

        // When
        Map<String, Object> p = GrouplessConsumer.properties(base, "broker:9092", "saeguard-test");

        // Then
        assertThat(p).doesNotContainKeys(ConsumerConfig.GROUP_ID_CONFIG, ConsumerConfig.GROUP_INSTANCE_ID_CONFIG)
                .containsEntry(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false")
                .containsEntry(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, "broker:9092")
                .containsEntry(ConsumerConfig.CLIENT_ID_CONFIG, "saeguard-test")
                .containsEntry(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest")
                .containsEntry("security.protocol", "SSL");
    }
}
