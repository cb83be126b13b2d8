package io.saeguard.sidecar.replay;

import static org.assertj.core.api.Assertions.assertThat;

import io.saeguard.topics.events.Action;
import io.saeguard.topics.events.Decision;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class DecisionComparisonTest {
    private static Decision decision(String request, long seq, long position, Action action) {
        Decision.Builder b = Decision.builder(request, seq, action, position);
        if (action != Action.ALLOW) {
            b.detector("toxicity").score(1.2);
        }
        return b.build();
    }

    private static ReplayedRecord replayed(String request, long seq, long position, Action action) {
        return new ReplayedRecord("acts", 0, seq, decision(request, seq, position, action));
    }

    @Test
    void theSameDecisionsAgreeCompletelyAndNothingChanges() {
        // Given
        DecisionComparison c = new DecisionComparison();
        c.addRecorded(decision("a", 0, 0, Action.ALLOW));
        c.addRecorded(decision("a", 1, 4, Action.FLAG));

        // When
        DecisionComparison.Result r = c.compare(List.of(replayed("a", 0, 0, Action.ALLOW), replayed("a", 1, 4, Action.FLAG)));

        // Then
        assertThat(r.compared()).isEqualTo(2);
        assertThat(r.agreement()).contains(1.0);
        assertThat(r.changed()).isEmpty();
        assertThat(r.detectors()).containsEntry("toxicity", new DecisionComparison.DetectorCounts(1, 1, 0));
    }

    @Test
    void aChangedActionIsListedWithItsRequestPositionAndBothActions() {
        // Given
        DecisionComparison c = new DecisionComparison();
        c.addRecorded(decision("a", 0, 0, Action.ALLOW));
        c.addRecorded(decision("a", 1, 4, Action.FLAG));

        // When
        DecisionComparison.Result r = c.compare(List.of(replayed("a", 0, 0, Action.ALLOW), replayed("a", 1, 4, Action.BLOCK)));

        // Then
        assertThat(r.changed()).singleElement().satisfies(ch -> {
            assertThat(ch.record().requestId()).isEqualTo("a");
            assertThat(ch.record().position()).isEqualTo(4);
            assertThat(ch.before().action()).isEqualTo(Action.FLAG);
            assertThat(ch.after().action()).isEqualTo(Action.BLOCK);
        });
        assertThat(r.agreement()).contains(0.5);
        assertThat(r.detectors().get("toxicity").changed()).isEqualTo(1);
    }

    @Test
    void aRedeliveredDecisionIsCountedOnce() {
        // Given the at-least-once repeat of a decision (same request, position and seq)
        DecisionComparison c = new DecisionComparison();
        c.addRecorded(decision("a", 0, 0, Action.FLAG));
        c.addRecorded(decision("a", 0, 0, Action.FLAG));
        c.addRecorded(decision("a", 1, 4, Action.BLOCK));

        // When
        DecisionComparison.Result r = c.compare(List.of(replayed("a", 0, 0, Action.FLAG), replayed("a", 1, 4, Action.BLOCK)));

        // Then
        assertThat(r.compared()).isEqualTo(2);
        assertThat(r.changed()).isEmpty();
    }

    @Test
    void aRequestWhoseEarlierChunksAreBeforeTheStretchIsNotCompared() {
        // Given production had decided two chunks of 'a' before the replayed one
        DecisionComparison c = new DecisionComparison();
        c.addRecorded(decision("a", 2, 8, Action.BLOCK));

        // When the replay sees it as the request's first chunk
        DecisionComparison.Result r = c.compare(List.of(replayed("a", 0, 8, Action.ALLOW)));

        // Then
        assertThat(r.compared()).isZero();
        assertThat(r.agreement()).isEmpty();
        assertThat(r.notCompare()).containsEntry(DecisionComparison.STARTED_BEFORE_WINDOW, 1L);
    }

    @Test
    void aRecordWithoutARecordedDecisionIsCountedMissingAndAStateResetApart() {
        // Given production restarted request 'b' (seq 0 again at position 4) and never decided 'c'
        DecisionComparison c = new DecisionComparison();
        c.addRecorded(decision("b", 0, 0, Action.ALLOW));
        c.addRecorded(decision("b", 0, 4, Action.ALLOW));

        // When
        DecisionComparison.Result r = c.compare(List.of(replayed("b", 0, 0, Action.ALLOW), replayed("b", 1, 4, Action.ALLOW),
                replayed("c", 0, 0, Action.ALLOW)));

        // Then
        assertThat(r.compared()).isEqualTo(1);
        assertThat(r.notCompare()).isEqualTo(Map.of(DecisionComparison.DECISION_MISSING, 1L, DecisionComparison.STARTED_BEFORE_WINDOW, 0L,
                DecisionComparison.STATE_RESET, 1L));
    }

    @Test
    void twoRecordsAtOnePositionTakeTheRecordedDecisionsInOrder() {
        // Given two chunks of 'a' at position 0 (two SAEs), decided allow then flag
        DecisionComparison c = new DecisionComparison();
        c.addRecorded(decision("a", 0, 0, Action.ALLOW));
        c.addRecorded(decision("a", 1, 0, Action.FLAG));

        // When
        DecisionComparison.Result r = c.compare(List.of(replayed("a", 0, 0, Action.ALLOW), replayed("a", 1, 0, Action.FLAG)));

        // Then
        assertThat(r.compared()).isEqualTo(2);
        assertThat(r.changed()).isEmpty();
    }
}
