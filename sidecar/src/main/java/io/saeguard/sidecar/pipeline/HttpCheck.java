package io.saeguard.sidecar.pipeline;

import java.util.Optional;
import java.util.concurrent.CompletableFuture;

/**
 * An HTTP encode or check inside an SAE's batch, with the future its result completes. Its activations were
 * checked finite before it was queued. A check ({@code decide}) goes through the detectors and completes with their
 * outcome (published nowhere); an encode completes with the codes alone.
 */
record HttpCheck(String requestId, String sae, long position, int tokens, Activations x, float[] norms, Optional<int[]> tokenIds,
        Optional<boolean[]> marked, boolean isFinal, long arrivedMs, boolean decide, CompletableFuture<CheckResult> result)
        implements ChunkInput {

    /**
     * An activation check, its values checked here, on the caller's thread, so a bad one never reaches the batch.
     *
     * @param dIn the SAE's input width
     * @throws InvalidRequestException for a wrong width or a non-finite value (naming the token and dimension)
     */
    static HttpCheck of(CheckRequest request, int dIn, boolean decide, long nowMs, CompletableFuture<CheckResult> result) {
        if (request.dIn() != dIn) {
            throw new InvalidRequestException("activations have d_in " + request.dIn() + " but SAE '" + request.sae() + "' expects d_in " + dIn);
        }
        float[] x = request.x().orElseThrow();
        float[] norms = TokenNorms.ofFinite(x, request.tokens(), dIn);
        if (norms == null) {
            int i = 0;
            while (Float.isFinite(x[i])) {
                i++;
            }
            throw new InvalidRequestException("token " + (i / dIn) + " (position " + (request.position() + i / dIn) + ") has a non-finite value ("
                    + x[i] + ") at dimension " + (i % dIn));
        }
        return new HttpCheck(request.requestId(), request.sae(), request.position(), request.tokens(), Activations.of(x), norms, request.tokenIds(),
                request.marked(), request.isFinal(), nowMs, decide, result);
    }
}
