package io.saeguard.sidecar.pipeline;

import io.saeguard.topics.activation.ActivationChunk;
import java.util.Objects;
import java.util.Optional;

/**
 * An HTTP encode or check: a run of one request's tokens given as activations, or a text for the prompt model (then the
 * activation fields are empty until the model ran: {@code tokens == 0}, {@code x} empty). Built by the HTTP API from a
 * request body; {@link EngineLoop#check} and {@link EngineLoop#encode} take it.
 *
 * @param requestId the request whose detector state a check reads and updates
 * @param sae       the SAE (already routed)
 * @param position  request position of the first token
 * @param tokens    tokens in {@code x}
 * @param dIn       width of a row of {@code x}
 * @param x         row-major {@code [tokens, dIn]} activations (not yet checked for finiteness)
 * @param tokenIds  the token ids, if given
 * @param marked    tokens the caller marked special, if any
 * @param isFinal   whether this is the request's last chunk
 * @param text      a text to run through the prompt model instead of activations (a whole request: position 0, final)
 */
public record CheckRequest(String requestId, String sae, long position, int tokens, int dIn, Optional<float[]> x,
        Optional<int[]> tokenIds, Optional<boolean[]> marked, boolean isFinal, Optional<String> text) {
    public CheckRequest {
        Objects.requireNonNull(requestId, "requestId");
        Objects.requireNonNull(sae, "sae");
        if (text.isEmpty() && x.isEmpty()) {
            throw new IllegalArgumentException("a check needs activations or a text");
        }
    }

    /**
     * A check of an activation record's chunk, with what the poll thread takes from it (request, position, token ids,
     * marked special tokens, finality), so it is decided as the record is in the stream ({@code saeguard replay}).
     *
     * @param sae the SAE the chunk routes to ({@link SaeRouter})
     */
    public static CheckRequest ofChunk(ActivationChunk chunk, String sae) {
        return new CheckRequest(chunk.requestId(), sae, chunk.position(), chunk.tokens(), chunk.dIn(), Optional.of(chunk.toFloatArray()),
                chunk.tokenIds().map(t -> t.toIntArray()), SpecialMask.marked(chunk.specialMask(), chunk.tokens()), chunk.isFinal(),
                Optional.empty());
    }

    /** A text check of a whole request through the prompt model. */
    public static CheckRequest ofText(String requestId, String sae, String text) {
        return new CheckRequest(requestId, sae, 0, 0, 0, Optional.empty(), Optional.empty(), Optional.empty(), true, Optional.of(text));
    }
}
