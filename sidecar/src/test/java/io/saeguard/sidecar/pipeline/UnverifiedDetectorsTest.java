package io.saeguard.sidecar.pipeline;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.saeguard.detectors.DetectorDefinition;
import io.saeguard.detectors.DetectorDefinitions;
import io.saeguard.sidecar.config.ConfigLoader;
import io.saeguard.sidecar.config.SidecarConfig;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class UnverifiedDetectorsTest {
    private static DetectorDefinition pack(String status) throws Exception {
        return DetectorDefinitions.parse(("""
                id: guess
                sae: s
                %s
                rule:
                  kind: features
                  features:
                    - id: 3
                      threshold: 1.0
                policy:
                  bands:
                    - min: 1.0
                      action: flag
                """.formatted(status)).getBytes(StandardCharsets.UTF_8), "guess.yaml");
    }

    @Test
    void anUnverifiedDetectorIsRefusedByDefaultNamingBothWaysOut() throws Exception {
        SidecarConfig defaults = ConfigLoader.load(Optional.empty(), Map.of());

        assertThat(defaults.allowUnverifiedDetectors()).isFalse();
        assertThatThrownBy(() -> Pipeline.checkAllowed(pack("status: unverified"), defaults)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("detector 'guess'").hasMessageContaining("status: unverified")
                .hasMessageContaining("allow_unverified_detectors: true").hasMessageContaining("saeguard eval");
    }

    @Test
    void theConfigCanAllowUnverifiedDetectorsAndVerifiedOnesNeedNothing() throws Exception {
        SidecarConfig allowing = ConfigLoader.load(Optional.empty(), Map.of("SAEGUARD_ALLOW_UNVERIFIED_DETECTORS", "true"));
        SidecarConfig defaults = ConfigLoader.load(Optional.empty(), Map.of());

        assertThatCode(() -> Pipeline.checkAllowed(pack("status: unverified"), allowing)).doesNotThrowAnyException();
        assertThatCode(() -> Pipeline.checkAllowed(pack(""), defaults)).doesNotThrowAnyException();
        assertThatCode(() -> Pipeline.checkAllowed(pack("status: verified"), defaults)).doesNotThrowAnyException();
    }

    @Test
    void anEscalateBandIsRefusedUnlessTheConfigTurnsTheJudgeCascadeOn() throws Exception {
        // Given a detector whose band escalates to a judge
        DetectorDefinition escalating = DetectorDefinitions.parse("""
                id: uncertain
                sae: s
                rule:
                  kind: features
                  features:
                    - id: 3
                      threshold: 1.0
                policy:
                  bands:
                    - min: 1.0
                      action: escalate
                      judge_timeout_ms: 500
                      fallback: block
                """.getBytes(StandardCharsets.UTF_8), "uncertain.yaml");
        SidecarConfig defaults = ConfigLoader.load(Optional.empty(), Map.of());
        SidecarConfig cascading = ConfigLoader.load(Optional.empty(), Map.of("SAEGUARD_JUDGE_CASCADE", "true"));

        // Then it is refused by default, naming the key, and accepted with the cascade on
        assertThat(defaults.judgeCascade()).isFalse();
        assertThatThrownBy(() -> Pipeline.checkAllowed(escalating, defaults)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("detector 'uncertain'").hasMessageContaining("judge_cascade: true");
        assertThatCode(() -> Pipeline.checkAllowed(escalating, cascading)).doesNotThrowAnyException();
    }
}
