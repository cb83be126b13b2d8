package io.saeguard.sae.train;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.OptionalLong;
import org.junit.jupiter.api.Test;

class TrainingOptionsTest {
    @Test
    void defaultsFollowSparsify() {
        TrainingOptions o = TrainingOptions.defaults(16384, 32);

        assertThat(o.effectiveLearningRate()).isCloseTo(2e-4, within(1e-12));
        assertThat(TrainingOptions.defaults(4096, 32).effectiveLearningRate()).isCloseTo(4e-4, within(1e-12));
        assertThat(o.effectiveAuxK(768)).isEqualTo(384);
        assertThat(o.auxKAlpha()).isEqualTo(1.0 / 32);
        assertThat(o.effectiveDeadAfterTokens(OptionalLong.empty())).isEqualTo(10_000_000L);
        assertThat(o.effectiveDeadAfterTokens(OptionalLong.of(1_000_000_000L))).isEqualTo(10_000_000L);
        assertThat(o.effectiveDeadAfterTokens(OptionalLong.of(200_000L))).isEqualTo(10_000L);
        assertThat(o.withDeadAfterTokens(5).effectiveDeadAfterTokens(OptionalLong.of(200_000L))).isEqualTo(5);
    }

    @Test
    void invalidValuesAreRejectedWithTheValue() {
        assertThatThrownBy(() -> TrainingOptions.defaults(8, 9)).hasMessage("k must be in [1, d_sae = 8], got 9");
        assertThatThrownBy(() -> TrainingOptions.defaults(8, 2).withBatchSize(1)).hasMessageContaining("batch size must be >= 2");
        assertThatThrownBy(() -> TrainingOptions.defaults(8, 2).withSteps(0)).hasMessageContaining("steps must be >= 1");
        assertThatThrownBy(() -> TrainingOptions.defaults(8, 2).withLearningRate(-1)).hasMessageContaining("learning rate");
        assertThatThrownBy(() -> TrainingOptions.defaults(8, 2).withEpochs(0)).hasMessageContaining("epochs must be >= 1");
    }

    @Test
    void aPassUsesItsTailBatchOnlyWhenItHoldsAtLeastHalfABatch() {
        assertThat(TopKTrainer.batchesPerPass(1000, 256)).isEqualTo(4);   // 3 full + 232 rows
        assertThat(TopKTrainer.batchesPerPass(800, 256)).isEqualTo(3);    // 3 full + 32 rows, dropped
        assertThat(TopKTrainer.batchesPerPass(100, 256)).isEqualTo(1);    // the only batch
        assertThat(TopKTrainer.batchesPerPass(1, 256)).isZero();
    }
}
