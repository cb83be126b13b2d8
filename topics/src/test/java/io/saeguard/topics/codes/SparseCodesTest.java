package io.saeguard.topics.codes;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Map;
import org.junit.jupiter.api.Test;

class SparseCodesTest {
    @Test
    void paddedLayoutDropsZerosAndKeepsOrderPerToken() {
        // Given 2 tokens x kmax 3, token 1 with one padding entry
        int[] idx = {5, 2, 9, 7, 1, -1};
        float[] val = {3f, 2f, 1f, 4f, 0.5f, 0f};

        SparseCodes c = SparseCodes.fromPadded("s", 10, 2, 3, idx, val, 1);

        assertThat(c.tokens()).isEqualTo(2);
        assertThat(c.activeCount(0)).isEqualTo(3);
        assertThat(c.activeCount(1)).isEqualTo(2);
        assertThat(c.featureAt(1, 0)).isEqualTo(7);
        assertThat(c.value(1, 1)).isEqualTo(0.5f);
        assertThat(c.value(1, 9)).isZero();
        assertThat(c.denseRow(0)).containsExactly(0, 0, 2, 0, 0, 3, 0, 0, 0, 1);
        assertThat(c.nonZeros()).isEqualTo(5);
        assertThat(c.truncatedTokens()).isEqualTo(1);
    }

    @Test
    void safetensorsRoundTripKeepsEverything() throws Exception {
        SparseCodes c = SparseCodes.fromPadded("sae-a", 10, 2, 2, new int[] {1, 2, 3, -1}, new float[] {-1f, 2f, 3f, 0f}, 0);

        SparseCodes back = SparseCodes.fromSafetensors(c.toSafetensors(Map.of("request_id", "r")));

        assertThat(back).isEqualTo(c);
        assertThat(back.sae()).isEqualTo("sae-a");
        assertThat(back.dSae()).isEqualTo(10);
    }

    @Test
    void sliceKeepsTheTokensRowsOnly() {
        SparseCodes c = SparseCodes.fromPadded("s", 10, 3, 2, new int[] {1, 2, 3, -1, 4, 5}, new float[] {1f, 2f, 3f, 0f, 4f, 5f}, 0);

        SparseCodes s = c.slice(1, 2);

        assertThat(s.tokens()).isEqualTo(2);
        assertThat(s.activeCount(0)).isEqualTo(1);
        assertThat(s.value(0, 3)).isEqualTo(3f);
        assertThat(s.value(1, 5)).isEqualTo(5f);
        assertThat(s.nonZeros()).isEqualTo(3);
    }

    @Test
    void featureIdsOutsideTheDictionaryAreRejected() {
        assertThatThrownBy(() -> SparseCodes.ofCsr("s", 4, new int[] {0, 1}, new int[] {4}, new float[] {1f}))
                .hasMessageContaining("feature id 4 outside [0, 4)");
    }

    @Test
    void fromTopKKeepsKmaxPerTokenAndCountsTruncationFromTheExtraColumn() {
        // Given top-(k+1) rows for 3 tokens, k = 2: token 0 has 3 active (truncated), token 1 has 1, token 2 none
        int[] ids = {7, 3, 9, 4, 0, 0, 1, 2, 5};
        float[] values = {5f, -4f, 1f, 2f, 0f, 0f, 0f, 0f, 0f};

        // When built straight from the top-k rows
        SparseCodes codes = SparseCodes.fromTopK("s", 10, 3, 3, 2, ids, values);

        // Then each token keeps its first k non-zero entries in order, and the third column only counts truncation
        assertThat(codes.tokens()).isEqualTo(3);
        assertThat(codes.activeCount(0)).isEqualTo(2);
        assertThat(codes.featureAt(0, 0)).isEqualTo(7);
        assertThat(codes.featureAt(0, 1)).isEqualTo(3);
        assertThat(codes.valueAt(0, 1)).isEqualTo(-4f);
        assertThat(codes.activeCount(1)).isEqualTo(1);
        assertThat(codes.value(1, 4)).isEqualTo(2f);
        assertThat(codes.activeCount(2)).isZero();
        assertThat(codes.truncatedTokens()).isEqualTo(1);
        assertThat(codes.toDense()).containsExactly(
                0, 0, 0, -4, 0, 0, 0, 5, 0, 0,
                0, 0, 0, 0, 2, 0, 0, 0, 0, 0,
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        // and equals what the padded layout gives for the same first k columns
        SparseCodes padded = SparseCodes.fromPadded("s", 10, 3, 2, new int[] {7, 3, 4, -1, -1, -1}, new float[] {5f, -4f, 2f, 0f, 0f, 0f}, 1);
        assertThat(codes).isEqualTo(padded);
        // with stride k there is no extra column and nothing counts as truncated
        assertThat(SparseCodes.fromTopK("s", 10, 1, 2, 2, new int[] {1, 2}, new float[] {3f, 1f}).truncatedTokens()).isZero();
    }

    @Test
    void fromTopKRejectsAStrideOrLengthThatDoesNotFit() {
        assertThatThrownBy(() -> SparseCodes.fromTopK("s", 10, 1, 4, 2, new int[4], new float[4]))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("stride");
        assertThatThrownBy(() -> SparseCodes.fromTopK("s", 10, 2, 3, 2, new int[5], new float[6]))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("2 x 3");
    }

    @Test
    void fromColumnsKeepsTheListedFeaturesOrderedByMagnitudeAndDropsZeros() {
        // Given features 3, 8 and 11 of a 16-feature SAE over 3 tokens, token 1 silent, token 2 signed with a tie
        int[] features = {3, 8, 11};
        float[] values = {1f, 0f, 2.5f, 0f, -0f, 0f, -2f, 0.5f, 2f};

        // When built from those columns
        SparseCodes c = SparseCodes.fromColumns("s", 16, 3, features, values);

        // Then each token keeps its non-zero codes, largest |value| first (ties by feature id), others absent
        assertThat(c.tokens()).isEqualTo(3);
        assertThat(c.activeCount(0)).isEqualTo(2);
        assertThat(c.featureAt(0, 0)).isEqualTo(11);
        assertThat(c.featureAt(0, 1)).isEqualTo(3);
        assertThat(c.activeCount(1)).isZero();
        assertThat(new int[] {c.featureAt(2, 0), c.featureAt(2, 1), c.featureAt(2, 2)}).containsExactly(3, 11, 8);
        assertThat(c.value(2, 3)).isEqualTo(-2f);
        assertThat(c.nonZeros()).isEqualTo(5);
        assertThat(c.truncatedTokens()).isZero();
        assertThatThrownBy(() -> SparseCodes.fromColumns("s", 16, 2, features, values)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("2 x 3");
        assertThatThrownBy(() -> SparseCodes.fromColumns("s", 8, 3, features, values)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("feature id 8");
    }
}
