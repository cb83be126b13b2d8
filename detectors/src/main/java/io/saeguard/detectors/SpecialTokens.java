package io.saeguard.detectors;

import java.util.List;

/**
 * Tokens that never count for a detector (YAML {@code special_tokens: {ids: [..], skip_first: true}}):
 * they are left out of every score, count and rate, as DSG masks BOS/PAD/EOS
 * (docs/algorithms.md#special-tokens). Attention-sink positions carry activation norms 100–1000× the
 * usual, so counting them would both fire features spuriously and skew the clamp scale.
 *
 * @param ids       token ids to skip wherever they occur; matched against {@link Chunk#tokenIds()}.
 *                  A chunk without token ids cannot be matched, and then only {@code skipFirst} applies
 * @param skipFirst skip request position 0 (the BOS token); default {@code true}
 */
public record SpecialTokens(List<Integer> ids, boolean skipFirst) {
    /** No ids, BOS skipped: the default when a definition says nothing. */
    public static final SpecialTokens DEFAULT = new SpecialTokens(List.of(), true);

    public SpecialTokens {
        ids = List.copyOf(ids);
        for (int id : ids) {
            if (id < 0) {
                throw new IllegalArgumentException("special token ids must be >= 0, got " + id);
            }
        }
    }
}
