package io.saeguard.sidecar.pipeline;

import io.saeguard.detectors.ChunkOutcome;
import io.saeguard.topics.codes.SparseCodes;
import java.util.Optional;

/**
 * What an HTTP encode or check produced.
 *
 * @param sae      the SAE that encoded it
 * @param position request position of the first token
 * @param codes    the codes of the request's tokens
 * @param outcome  for a check, the detectors' outcome: the decision, the alerts and every detector's verdict
 */
public record CheckResult(String sae, long position, SparseCodes codes, Optional<ChunkOutcome> outcome) {
}
