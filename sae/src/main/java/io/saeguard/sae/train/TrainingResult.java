package io.saeguard.sae.train;

import java.util.Optional;

/**
 * What a {@link TopKTrainer#train} run did.
 *
 * @param steps        optimiser steps made
 * @param rows         training rows consumed (counting repeats over epochs)
 * @param seconds      wall time of the optimisation loop
 * @param finalLoss    the mean loss over the last report window
 * @param train        the final weights measured over all training rows
 * @param heldOut      the final weights measured over the held-out rows, when given
 * @param log10Density per latent, {@code log10(fires / rows + 1e-10)} over the training rows
 *                     (SAELens' {@code sparsity.safetensors})
 */
public record TrainingResult(long steps, long rows, double seconds, double finalLoss, ReconstructionQuality train,
        Optional<ReconstructionQuality> heldOut, float[] log10Density) {
}
