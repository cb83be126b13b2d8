package io.saeguard.sidecar.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import io.saeguard.detectors.ChunkOutcome;
import io.saeguard.detectors.Policy;
import io.saeguard.topics.events.Action;
import io.saeguard.topics.events.Decision;
import io.saeguard.topics.events.JudgeRequest;
import io.saeguard.topics.events.JudgeVerdict;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.OptionalLong;
import java.util.Set;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;

class JudgeCascadeTest {
    private static final TopicPartition P0 = new TopicPartition("activations", 0);
    private static final TopicPartition P1 = new TopicPartition("activations", 1);
    private static final Policy.Escalation TO_BLOCK = new Policy.Escalation(500, Action.BLOCK);

    /** The detector engine's next seq per request it still holds; absent requests it has released. */
    private final Map<String, Long> held = new HashMap<>();
    private final JudgeCascade cascade = new JudgeCascade(100, id -> {
        Long next = held.get(id);
        if (next == null) {
            return OptionalLong.empty();
        }
        held.put(id, next + 1);
        return OptionalLong.of(next);
    });

    private static ChunkOutcome flagged(String request, long seq, Optional<Policy.Escalation> escalation) {
        Decision d = Decision.builder(request, seq, Action.FLAG, 8 * seq).detector("probe").score(0.7).reason("r").build();
        return new ChunkOutcome(d, List.of(), List.of(), List.of(), escalation);
    }

    private static JudgeVerdict verdict(String request, Action action) {
        return new JudgeVerdict(request, "probe", action, "asks for intrusion steps", Optional.of("judge-model"), OptionalLong.empty());
    }

    @Test
    void anEscalatingOutcomeYieldsAJudgeRequestWithTheDecisionsFactsAndTheCutExcerpt() {
        // When
        Optional<JudgeRequest> request = cascade.escalate(flagged("r", 2, Optional.of(TO_BLOCK)), P0, OptionalInt.empty(), Optional.of("x".repeat(5000)), 1_000);

        // Then
        assertThat(request).hasValueSatisfying(j -> {
            assertThat(j.requestId()).isEqualTo("r");
            assertThat(j.seq()).isEqualTo(2);
            assertThat(j.detector()).isEqualTo("probe");
            assertThat(j.score()).hasValue(0.7);
            assertThat(j.timeoutMs()).isEqualTo(500);
            assertThat(j.fallback()).isEqualTo(Action.BLOCK);
            assertThat(j.excerpt()).hasValueSatisfying(e -> assertThat(e).hasSize(JudgeCascade.MAX_EXCERPT_CHARS));
        });
        assertThat(cascade.pending()).isEqualTo(1);
    }

    @Test
    void anOutcomeWithoutEscalationOrARequestAlreadyPendingAsksNothing() {
        // Given
        cascade.escalate(flagged("r", 0, Optional.of(TO_BLOCK)), P0, OptionalInt.empty(), Optional.empty(), 0);

        // When
        Optional<JudgeRequest> again = cascade.escalate(flagged("r", 1, Optional.of(TO_BLOCK)), P0, OptionalInt.empty(), Optional.empty(), 10);
        Optional<JudgeRequest> plain = cascade.escalate(flagged("s", 0, Optional.empty()), P0, OptionalInt.empty(), Optional.empty(), 10);

        // Then
        assertThat(again).isEmpty();
        assertThat(plain).isEmpty();
        assertThat(cascade.pending()).isEqualTo(1);
    }

    @Test
    void aVerdictBecomesTheNextDecisionAfterTheLastSeenWhenTheEngineReleasedTheRequest() {
        // Given an escalation at seq 0 and a later chunk decided at seq 1
        cascade.escalate(flagged("r", 0, Optional.of(TO_BLOCK)), P0, OptionalInt.empty(), Optional.empty(), 0);
        cascade.escalate(flagged("r", 1, Optional.empty()), P0, OptionalInt.empty(), Optional.empty(), 5);

        // When
        JudgeCascade.Outcome outcome = cascade.verdict(verdict("r", Action.BLOCK), 100);

        // Then
        assertThat(outcome).isInstanceOfSatisfying(JudgeCascade.Outcome.Decided.class, d -> {
            assertThat(d.decision().seq()).isEqualTo(2);
            assertThat(d.decision().action()).isEqualTo(Action.BLOCK);
            assertThat(d.decision().detector()).contains("probe");
            assertThat(d.decision().position()).isZero();
            assertThat(d.decision().reason()).contains("judge judge-model: asks for intrusion steps");
        });
        assertThat(cascade.pending()).isZero();
    }

    @Test
    void theVerdictAndTheFallbackGoToTheReplyPartitionTheEscalatingRecordNamed() {
        // Given two escalations from records that asked for decisions on partition 7
        cascade.escalate(flagged("r", 0, Optional.of(TO_BLOCK)), P0, OptionalInt.of(7), Optional.empty(), 0);
        cascade.escalate(flagged("s", 0, Optional.of(TO_BLOCK)), P0, OptionalInt.of(7), Optional.empty(), 0);

        // When one is judged and the other times out
        JudgeCascade.Outcome judged = cascade.verdict(verdict("r", Action.BLOCK), 100);
        List<JudgeCascade.Fallback> fallbacks = cascade.expire(10_000);

        // Then both decisions name partition 7
        assertThat(judged).isInstanceOfSatisfying(JudgeCascade.Outcome.Decided.class, d -> assertThat(d.replyPartition()).hasValue(7));
        assertThat(fallbacks).singleElement().satisfies(f -> assertThat(f.replyPartition()).hasValue(7));
    }

    @Test
    void aVerdictTakesTheEnginesNextSeqWhileTheEngineHoldsTheRequest() {
        // Given
        cascade.escalate(flagged("r", 0, Optional.of(TO_BLOCK)), P0, OptionalInt.empty(), Optional.empty(), 0);
        held.put("r", 4L);

        // When
        JudgeCascade.Outcome outcome = cascade.verdict(verdict("r", Action.ALLOW), 100);

        // Then
        assertThat(outcome).isInstanceOfSatisfying(JudgeCascade.Outcome.Decided.class, d -> assertThat(d.decision().seq()).isEqualTo(4));
        assertThat(held).containsEntry("r", 5L);
    }

    @Test
    void noVerdictByTheDeadlineGivesTheFallbackOnceAndALaterVerdictIsLate() {
        // Given
        cascade.escalate(flagged("r", 0, Optional.of(TO_BLOCK)), P1, OptionalInt.empty(), Optional.empty(), 1_000);

        // When
        List<JudgeCascade.Fallback> early = cascade.expire(1_499);
        List<JudgeCascade.Fallback> due = cascade.expire(1_500);
        List<JudgeCascade.Fallback> after = cascade.expire(9_000);
        JudgeCascade.Outcome late = cascade.verdict(verdict("r", Action.ALLOW), 9_001);

        // Then
        assertThat(early).isEmpty();
        assertThat(due).singleElement().satisfies(f -> {
            assertThat(f.partition()).isEqualTo(P1);
            assertThat(f.decision().action()).isEqualTo(Action.BLOCK);
            assertThat(f.decision().seq()).isEqualTo(1);
            assertThat(f.decision().reason()).contains("no judge verdict within 500 ms: fallback block");
        });
        assertThat(after).isEmpty();
        assertThat(late).isInstanceOfSatisfying(JudgeCascade.Outcome.Refused.class,
                r -> assertThat(r.reason()).isEqualTo(FailureReason.LATE_VERDICT));
    }

    @Test
    void aVerdictForARequestNeverEscalatedIsUnknown() {
        // When
        JudgeCascade.Outcome outcome = cascade.verdict(verdict("nobody", Action.BLOCK), 0);

        // Then
        assertThat(outcome).isInstanceOfSatisfying(JudgeCascade.Outcome.Refused.class,
                r -> assertThat(r.reason()).isEqualTo(FailureReason.UNKNOWN_REQUEST));
    }

    @Test
    void aVerdictNamingAnotherDetectorIsRefusedAndTheEscalationStaysPending() {
        // Given
        cascade.escalate(flagged("r", 0, Optional.of(TO_BLOCK)), P0, OptionalInt.empty(), Optional.empty(), 0);

        // When
        JudgeCascade.Outcome outcome = cascade.verdict(new JudgeVerdict("r", "other", Action.ALLOW, "", Optional.empty(),
                OptionalLong.empty()), 10);

        // Then
        assertThat(outcome).isInstanceOf(JudgeCascade.Outcome.Refused.class);
        assertThat(cascade.pending()).isEqualTo(1);
    }

    @Test
    void forgettingAPartitionDropsItsEscalationsSoNoFallbackFollows() {
        // Given
        cascade.escalate(flagged("a", 0, Optional.of(TO_BLOCK)), P0, OptionalInt.empty(), Optional.empty(), 0);
        cascade.escalate(flagged("b", 0, Optional.of(TO_BLOCK)), P1, OptionalInt.empty(), Optional.empty(), 0);

        // When
        int dropped = cascade.forget(Set.of(P0));

        // Then
        assertThat(dropped).isEqualTo(1);
        assertThat(cascade.expire(10_000)).extracting(f -> f.decision().requestId()).containsExactly("b");
    }
}
