package io.saeguard.detectors.rules;

import java.util.Arrays;

/**
 * Maps a feature id to its position in a rule's feature list in O(1): a dense table up to the largest
 * listed id (an SAE of 16k features costs 64 KB), so scoring a token is one lookup per active feature.
 */
final class FeatureIndex {
    private final int[] slotOf;

    FeatureIndex(int[] ids) {
        int max = Arrays.stream(ids).max().orElse(-1);
        slotOf = new int[max + 1];
        Arrays.fill(slotOf, -1);
        for (int i = 0; i < ids.length; i++) {
            slotOf[ids[i]] = i;
        }
    }

    /** The feature's position in the list, or -1. */
    int slot(int feature) {
        return feature < slotOf.length ? slotOf[feature] : -1;
    }
}
