package io.saeguard.detectors.select;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class TextSplitTest {
    @Test
    void leaveOneGroupOutHoldsOutEachGroupOnceAndFitsOnTheOthers() {
        // Given positives and negatives of two system prompts, "orig" and "new"
        String[] pos = {"orig", "new", "orig", "new", "orig"};
        String[] neg = {"new", "orig", "orig", "new", "new", "orig", "orig", "new"};

        // When folds are made by group
        List<TextSplit> folds = TextSplit.byGroup(pos, neg, 0.25, 1);

        // Then there is one fold per group, in sorted order, holding out exactly that group's examples
        assertThat(folds).hasSize(2);
        for (int f = 0; f < 2; f++) {
            String g = f == 0 ? "new" : "orig";
            TextSplit s = folds.get(f);
            assertThat(s.description()).contains("'" + g + "'");
            assertThat(s.positiveTest()).containsExactly(indices(pos, g, true));
            assertThat(s.negativeTest()).containsExactly(indices(neg, g, true));
            // and fits (and calibrates) on the other group only
            assertThat(s.positiveFit()).containsExactly(indices(pos, g, false));
            int[] rest = IntStream.concat(Arrays.stream(s.negativeFit()), Arrays.stream(s.negativeCalibration())).sorted().toArray();
            assertThat(rest).containsExactly(indices(neg, g, false));
        }
    }

    @Test
    void aGroupWithoutNegativesIsAnErrorNamingIt() {
        // Given a group with positives only
        String[] pos = {"a", "b", "c"};
        String[] neg = {"a", "a", "b", "b"};

        // When / Then folds by group refuse it, naming the group
        assertThatThrownBy(() -> TextSplit.byGroup(pos, neg, 0.25, 1)).hasMessageContaining("group 'c' has 1 positive and 0 negative");
        assertThatThrownBy(() -> TextSplit.byGroup(new String[] {"a"}, new String[] {"a", "a"}, 0.25, 1))
                .hasMessageContaining("at least 2 distinct values");
    }

    @Test
    void foldsWithinTheTrainingPartNeverHoldTheHeldOutExamplesAndTestEachTrainingExampleOnce() {
        // Given 20 positives and 30 negatives of which every third is given as the test split
        boolean[] posTest = new boolean[20];
        boolean[] negTest = new boolean[30];
        for (int i = 0; i < 30; i++) {
            negTest[i] = i % 3 == 0;
            if (i < 20) {
                posTest[i] = i % 3 == 0;
            }
        }
        TextSplit outer = TextSplit.given(posTest, negTest, 0.25, 1, "every third");

        // When 4 folds are made over its training part
        int[][] train = outer.training();
        List<TextSplit> inner = TextSplit.folds(train[0].length, train[1].length, 4, 0.25, 1).stream()
                .map(f -> f.within(train[0], train[1], "(training part)")).toList();

        // Then no fold uses a test example, and every training example is tested by exactly one fold
        assertThat(train[0]).doesNotContain(outer.positiveTest());
        assertThat(train[1]).doesNotContain(outer.negativeTest());
        for (TextSplit f : inner) {
            for (int[] part : List.of(f.positiveFit(), f.positiveTest())) {
                assertThat(part).doesNotContain(outer.positiveTest());
            }
            for (int[] part : List.of(f.negativeFit(), f.negativeCalibration(), f.negativeTest())) {
                assertThat(part).doesNotContain(outer.negativeTest());
            }
        }
        assertThat(inner.stream().flatMapToInt(f -> Arrays.stream(f.positiveTest())).sorted().toArray()).containsExactly(train[0]);
        assertThat(inner.stream().flatMapToInt(f -> Arrays.stream(f.negativeTest())).sorted().toArray()).containsExactly(train[1]);
    }

    private static int[] indices(String[] groups, String g, boolean in) {
        return IntStream.range(0, groups.length).filter(i -> groups[i].equals(g) == in).toArray();
    }
}
