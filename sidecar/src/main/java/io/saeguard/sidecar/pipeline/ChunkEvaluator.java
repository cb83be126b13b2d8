package io.saeguard.sidecar.pipeline;

import io.saeguard.detectors.Chunk;
import io.saeguard.detectors.ChunkOutcome;
import io.saeguard.detectors.DetectorEngine;
import io.saeguard.topics.codes.SparseCodes;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * Puts one chunk's codes to its SAE's detectors: builds the {@link Chunk} (activations only when a detector reads
 * them, special tokens from the source's marks and the SAE's configured special token ids) and evaluates it with the
 * chunk's age. The one path from codes to an outcome, for consumed records and HTTP checks alike.
 *
 * <p>Not thread-safe: the engine thread owns it and the {@link DetectorEngine} inside.
 */
final class ChunkEvaluator {
    private final DetectorEngine detectors;
    private final Map<String, int[]> specialTokenIds;

    /** @param specialTokenIds per SAE, its configured special token ids, sorted */
    ChunkEvaluator(DetectorEngine detectors, Map<String, int[]> specialTokenIds) {
        this.detectors = Objects.requireNonNull(detectors, "detectors");
        this.specialTokenIds = Map.copyOf(specialTokenIds);
    }

    /**
     * Evaluates {@code codes}, the chunk's own rows of its batch's codes.
     *
     * @param dIn       the SAE's input width
     * @param nowMillis wall clock; the chunk's age is {@code nowMillis - input.arrivedMs()} (a detector's deadline)
     * @throws RuntimeException when the chunk cannot be built (a detector's own failure is its fail mode's verdict instead)
     */
    ChunkOutcome evaluate(ChunkInput input, SparseCodes codes, int dIn, long nowMillis) {
        int tokens = input.tokens();
        Optional<boolean[]> special = SpecialMask.of(input.marked(), input.tokenIds(), specialTokenIds.get(input.sae()), tokens);
        Chunk chunk = new Chunk(input.requestId(), input.sae(), input.position(), codes,
                detectors.needsActivations(input.sae()) ? Optional.of(input.x().toArray()) : Optional.empty(), dIn, input.norms(), input.tokenIds(),
                special, input.isFinal());
        return detectors.evaluate(chunk, nowMillis, Math.max(0, nowMillis - input.arrivedMs()));
    }

    /** The detectors (to replace one, forget or evict request state). */
    DetectorEngine detectors() {
        return detectors;
    }
}
