package io.saeguard.sidecar.pipeline;

import java.util.Optional;

/**
 * A run of one request's tokens waiting in an SAE's batch: a consumed record ({@link Work}) or an HTTP check
 * ({@link HttpCheck}). Both are encoded in the same batch and decided by the same {@link ChunkEvaluator}, so
 * an HTTP check answers exactly as the stream would.
 */
sealed interface ChunkInput permits Work, HttpCheck {
    /** The request, whose detector state the chunk reads and updates. */
    String requestId();

    /** The SAE the chunk routes to. */
    String sae();

    /** Request position of the first token. */
    long position();

    /** Tokens in the chunk. */
    int tokens();

    /** The activations, row-major {@code [tokens, d_in]}, all finite. */
    Activations x();

    /** Each token's L2 norm (length {@code tokens}). */
    float[] norms();

    /** The token ids, when the source gave them. */
    Optional<int[]> tokenIds();

    /** The tokens the source marked special (a record's {@code special_mask}, a tokenizer's special tokens). */
    Optional<boolean[]> marked();

    /** Whether this is the request's last chunk. */
    boolean isFinal();

    /** When it arrived (wall clock, ms): a detector's {@code deadline_ms} counts from the record's own timestamp. */
    long arrivedMs();
}
