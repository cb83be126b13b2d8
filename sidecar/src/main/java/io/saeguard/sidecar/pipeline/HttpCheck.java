package io.saeguard.sidecar.pipeline;

import java.util.Optional;
import java.util.concurrent.CompletableFuture;

/**
 * An HTTP encode or check inside an SAE's batch, with the future its result completes. Its activations were
 * checked finite before it was queued. A check ({@code decide}) goes through the detectors and completes with their
 * outcome (published nowhere); an encode completes with the codes alone.
 */
record HttpCheck(String requestId, String sae, long position, int tokens, float[] x, float[] norms, Optional<int[]> tokenIds,
        Optional<boolean[]> marked, boolean isFinal, long arrivedMs, boolean decide, CompletableFuture<CheckResult> result)
        implements ChunkInput {
}
