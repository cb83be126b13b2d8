package io.saeguard.sae.train;

import java.util.OptionalLong;

/**
 * A progress report of {@link TopKTrainer}: losses are means over the steps since the previous report.
 *
 * @param step        optimiser steps done
 * @param totalSteps  steps the run will make, when known
 * @param rows        training rows seen
 * @param epoch       the pass in progress (0-based)
 * @param loss        {@code FVU + α·AuxK}
 * @param fvu         the batches' fraction of variance unexplained (each batch against its own mean)
 * @param auxK        the AuxK term (normalised like FVU, before α)
 * @param l0          mean non-zero codes per row
 * @param deadLatents latents that have not fired within the dead-latent window
 * @param seconds     wall time since training started
 */
public record TrainingProgress(long step, OptionalLong totalSteps, long rows, int epoch, double loss, double fvu, double auxK, double l0,
        int deadLatents, double seconds) {
}
