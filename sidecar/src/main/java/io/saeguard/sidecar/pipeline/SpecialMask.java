package io.saeguard.sidecar.pipeline;

import io.saeguard.topics.safetensors.Tensor;
import java.util.Arrays;
import java.util.Optional;

/**
 * Which tokens of a record are special (BOS, PAD, EOS...) and so never count for a detector: those the record marks in
 * its {@code special_mask}, and those whose {@code token_ids} entry is one of the SAE's configured
 * {@code special_token_ids}. Prompt events get the tokenizer's special tokens as their {@code special_mask}.
 */
public final class SpecialMask {
    private SpecialMask() {
    }

    /**
     * @param marked     the tokens the source marked special, if any ({@link #marked})
     * @param tokenIds   the record's token ids, if any
     * @param configured the SAE's special token ids, sorted; null or empty for none
     * @param tokens     the record's token count
     * @return the mask, or empty when no token is special
     */
    public static Optional<boolean[]> of(Optional<boolean[]> marked, Optional<int[]> tokenIds, int[] configured, int tokens) {
        boolean[] special = marked.map(boolean[]::clone).orElse(null);
        if (tokenIds.isPresent() && configured != null && configured.length > 0) {
            int[] ids = tokenIds.get();
            for (int t = 0; t < tokens; t++) {
                if (Arrays.binarySearch(configured, ids[t]) >= 0) {
                    special = special != null ? special : new boolean[tokens];
                    special[t] = true;
                }
            }
        }
        if (special != null) {
            for (boolean b : special) {
                if (b) {
                    return Optional.of(special);
                }
            }
        }
        return Optional.empty();
    }

    /** A record's {@code special_mask} as booleans (nonzero = special); empty when absent or when it marks no token. */
    public static Optional<boolean[]> marked(Optional<Tensor> mask, int tokens) {
        if (mask.isEmpty()) {
            return Optional.empty();
        }
        long[] m = mask.get().toLongArray();
        boolean[] special = null;
        for (int t = 0; t < tokens; t++) {
            if (m[t] != 0) {
                special = special != null ? special : new boolean[tokens];
                special[t] = true;
            }
        }
        return Optional.ofNullable(special);
    }
}
