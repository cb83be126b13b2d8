package io.saeguard.sidecar.pipeline;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import org.junit.jupiter.api.Test;

class TokenBatcherTest {
    /** An item is its token count; the budget is 10 tokens, the delay 100 ns. */
    private final TokenBatcher<Integer> batcher = new TokenBatcher<>(10, 100, Integer::intValue);

    @Test
    void aBatchIsReadyOnceItReachesTheTokenBudgetWithItsItemsInArrivalOrder() {
        // Given two items below the budget
        assertThat(batcher.add("a", 4, 0)).isEmpty();
        assertThat(batcher.add("a", 5, 1)).isEmpty();

        // When a third crosses it
        var batch = batcher.add("a", 3, 2);

        // Then the batch comes out whole, and nothing waits any more
        assertThat(batch).hasValueSatisfying(b -> {
            assertThat(b.sae()).isEqualTo("a");
            assertThat(b.items()).containsExactly(4, 5, 3);
            assertThat(b.tokens()).isEqualTo(12);
        });
        assertThat(batcher.isEmpty()).isTrue();
        assertThat(batcher.nextDeadlineNanos()).isEqualTo(Long.MAX_VALUE);
    }

    @Test
    void aBatchIsDueMaxDelayAfterItsFirstItemNotItsLast() {
        // Given an item at t=1000 and another at t=1090
        batcher.add("a", 1, 1000);
        batcher.add("a", 1, 1090);

        // Then the deadline is the first item's plus the delay
        assertThat(batcher.nextDeadlineNanos()).isEqualTo(1100);
        assertThat(batcher.due(1099)).isEmpty();
        List<TokenBatcher.Batch<Integer>> due = batcher.due(1100);
        assertThat(due).singleElement().satisfies(b -> assertThat(b.items()).containsExactly(1, 1));
    }

    @Test
    void eachSaeHasItsOwnBudgetAndDeadline() {
        // Given items for two SAEs at different times
        batcher.add("a", 6, 0);
        batcher.add("b", 6, 50);

        // When a's budget is reached, b's batch is untouched
        assertThat(batcher.add("a", 6, 60)).hasValueSatisfying(b -> assertThat(b.sae()).isEqualTo("a"));
        assertThat(batcher.nextDeadlineNanos()).isEqualTo(150);

        // And only b is due at its own deadline
        assertThat(batcher.due(150)).extracting(TokenBatcher.Batch::sae).containsExactly("b");
    }

    @Test
    void drainAllTakesEveryWaitingBatchInArrivalOrderOfTheirSaes() {
        batcher.add("a", 1, 0);
        batcher.add("b", 2, 0);
        batcher.add("c", 3, 0);

        assertThat(batcher.drainAll()).extracting(TokenBatcher.Batch::sae).containsExactly("a", "b", "c");
        assertThat(batcher.isEmpty()).isTrue();
        assertThat(batcher.drainAll()).isEmpty();
    }

    @Test
    void aDeadlineAcrossTheNanoClocksWrapStillComesDue() {
        // Given a first item just before Long.MAX_VALUE: its deadline wraps to a negative value
        long start = Long.MAX_VALUE - 10;
        batcher.add("a", 1, start);

        // Then it is not due before the delay passed, and is due after, across the wrap
        assertThat(batcher.due(start + 50)).isEmpty();
        assertThat(batcher.due(start + 100)).hasSize(1);
    }

    @Test
    void aBudgetBelowOneTokenIsRefused() {
        assertThatThrownBy(() -> new TokenBatcher<Integer>(0, 0, Integer::intValue)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("maxTokens");
    }
}
