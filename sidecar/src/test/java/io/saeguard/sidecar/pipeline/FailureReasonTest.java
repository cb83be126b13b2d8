package io.saeguard.sidecar.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import io.saeguard.topics.DecodeException;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

class FailureReasonTest {
    @Test
    void everyDecodeReasonHasADeadLetterReasonWithTheSameLabelUnderTheDecodeStage() {
        for (DecodeException.Reason r : DecodeException.Reason.values()) {
            DecodeException e = new DecodeException(r, "x");

            FailureReason reason = FailureReason.of(e);

            assertThat(reason.stage()).isEqualTo(FailureStage.DECODE);
            assertThat(reason.label()).isEqualTo(e.reasonLabel());
        }
    }

    @Test
    void aStageAndReasonPairNamesOneReason() {
        Set<String> pairs = new HashSet<>();
        for (FailureReason r : FailureReason.values()) {
            assertThat(pairs.add(r.stage().label() + "/" + r.label())).as(r.name()).isTrue();
        }
    }

    @Test
    void labelsAreTheSnakeCaseTheDashboardsAndHeadersUse() {
        assertThat(FailureReason.WRONG_D_IN.label()).isEqualTo("wrong_d_in");
        assertThat(FailureReason.MODEL_NON_FINITE.label()).isEqualTo("non_finite");
        assertThat(FailureReason.MODEL_NON_FINITE.stage().label()).isEqualTo("model");
        assertThat(Arrays.stream(FailureStage.values()).map(FailureStage::label)).containsExactly("decode", "route", "validate", "model",
                "encode", "detect", "egress", "judge");
    }
}
