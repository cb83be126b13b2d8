package io.saeguard.sidecar.kafka;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Map;
import org.junit.jupiter.api.Test;

/** The admin client properties a command line uses: short timeouts unless the user says otherwise. */
class TopicAdminTest {
    @Test
    void aCommandLineGivesUpOnTheClusterAfterTenSecondsWithRequestsOfFive() {
        // Given no admin properties from the user
        // When the command line's properties are built
        Map<String, Object> props = TopicAdmin.commandLineProperties("broker:9092", Map.of());

        // Then the bootstrap is set and calls time out after 10 s instead of the admin client's default minute
        assertThat(props).containsEntry("bootstrap.servers", "broker:9092").containsEntry("default.api.timeout.ms", "10000")
                .containsEntry("request.timeout.ms", "5000");
    }

    @Test
    void aUsersShorterCallTimeoutAlsoShortensTheRequestTimeoutSoTheAdminClientAcceptsIt() {
        // Given a user's call timeout below the command line's request timeout
        // When the properties are built
        Map<String, Object> props = TopicAdmin.commandLineProperties("broker:9092", Map.of("default.api.timeout.ms", "3000"));

        // Then the request timeout is no longer than it (the admin client refuses an explicit call timeout below it)
        assertThat(props).containsEntry("default.api.timeout.ms", "3000").containsEntry("request.timeout.ms", "3000");
    }

    @Test
    void theUsersPropertiesWin() {
        // Given a user's longer timeouts
        // When the properties are built
        Map<String, Object> props = TopicAdmin.commandLineProperties("broker:9092",
                Map.of("default.api.timeout.ms", "90000", "request.timeout.ms", "30000"));

        // Then they are the ones used
        assertThat(props).containsEntry("default.api.timeout.ms", "90000").containsEntry("request.timeout.ms", "30000");
    }
}
