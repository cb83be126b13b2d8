package io.saeguard.sidecar.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.node.ArrayNode;
import io.saeguard.detectors.Verdict;
import io.saeguard.topics.events.Action;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class VerdictsJsonTest {
    @Test
    void aShadowVerdictIsMarkedShadowAndALiveOneIsNot() {
        // Given
        Verdict live = new Verdict("live", 0.5, Action.ALLOW, Optional.empty(), false);
        Verdict shadow = new Verdict("trial", 2.0, Action.BLOCK, Optional.empty(), false, Optional.empty(), true);

        // When
        ArrayNode json = VerdictsJson.of(List.of(live, shadow));

        // Then
        assertThat(json.get(0).has("shadow")).isFalse();
        assertThat(json.get(1).path("shadow").asBoolean()).isTrue();
        assertThat(json.get(1).path("action").asText()).isEqualTo("block");
        assertThat(json.get(1).path("alert").asBoolean()).isFalse();
    }
}
