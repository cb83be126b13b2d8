package io.saeguard.detectors.spi;

import io.saeguard.topics.codes.SparseCodes;

/**
 * The chunk as a rule sees it. A view owned by the engine and reused across chunks: valid only during
 * {@link TokenRule#score}; never keep it or its arrays.
 */
public interface RuleInput {
    /** Number of tokens in the chunk. */
    int tokens();

    /** The chunk's SAE codes. */
    SparseCodes codes();

    /** Whether token {@code t} counts for this detector (special tokens do not). */
    boolean counted(int t);

    /** Request position of token 0. */
    long position();

    /** Width of an activation row. */
    int dIn();

    /**
     * Row-major {@code [tokens, dIn]} raw activations.
     *
     * @throws IllegalStateException when the chunk carries none (only rules with
     *     {@link TokenRule#needsActivations()} may call this)
     */
    float[] activations();
}
