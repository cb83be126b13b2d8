package io.saeguard.sae.train;

import java.util.OptionalDouble;
import java.util.OptionalInt;
import java.util.OptionalLong;

/**
 * How {@link TopKTrainer} trains. Defaults follow EleutherAI sparsify and the TopK paper (Gao et
 * al., "Scaling and evaluating sparse autoencoders", arXiv 2406.04093): AuxK with α = 1/32 and
 * k_aux = d_in / 2 (its Appendix B.1), learning rate {@code 2e-4 / sqrt(d_sae / 2^14)}, Adam
 * (β₁ 0.9, β₂ 0.999, ε 1e-8).
 *
 * @param dSae            dictionary size
 * @param k               active latents per row, in [1, d_sae]
 * @param batchSize       rows per step, {@code >= 2} (the loss is normalised by the batch's variance)
 * @param steps           optimiser steps; when empty, {@code epochs} passes over the source
 * @param epochs          passes over the source when {@code steps} is empty, {@code >= 1}
 * @param learningRate    Adam's step size; empty: {@code 2e-4 / sqrt(d_sae / 16384)}
 * @param seed            seeds the initial weights and every pass's row order
 * @param auxKAlpha       weight of the AuxK loss, {@code >= 0} (0 turns it off)
 * @param auxK            dead latents used by AuxK; empty: {@code d_in / 2}
 * @param deadAfterTokens a latent that has not fired for this many training rows is dead; empty:
 *                        10M (sparsify's default) or a twentieth of the run's rows if that is fewer,
 *                        so small runs still revive latents
 * @param decoderBias     train {@code b_dec} (initialised to the geometric median of up to 8192
 *                        training rows); false keeps it at zero, as residual SAEs do (docs/algorithms.md#composed-saes)
 * @param reportEvery     steps between progress reports; 0: about 100 reports per run
 */
public record TrainingOptions(int dSae, int k, int batchSize, OptionalLong steps, int epochs, OptionalDouble learningRate, long seed,
        double auxKAlpha, OptionalInt auxK, OptionalLong deadAfterTokens, boolean decoderBias, int reportEvery) {

    /** sparsify's dead-latent window. */
    public static final long DEAD_AFTER_TOKENS = 10_000_000L;

    public TrainingOptions {
        if (dSae < 1) {
            throw new IllegalArgumentException("d_sae must be >= 1, got " + dSae);
        }
        if (k < 1 || k > dSae) {
            throw new IllegalArgumentException("k must be in [1, d_sae = " + dSae + "], got " + k);
        }
        if (batchSize < 2) {
            throw new IllegalArgumentException("batch size must be >= 2, got " + batchSize);
        }
        if (steps.isPresent() && steps.getAsLong() < 1) {
            throw new IllegalArgumentException("steps must be >= 1, got " + steps.getAsLong());
        }
        if (epochs < 1) {
            throw new IllegalArgumentException("epochs must be >= 1, got " + epochs);
        }
        if (learningRate.isPresent() && !(learningRate.getAsDouble() > 0 && Double.isFinite(learningRate.getAsDouble()))) {
            throw new IllegalArgumentException("learning rate must be a positive number, got " + learningRate.getAsDouble());
        }
        if (!(auxKAlpha >= 0 && Double.isFinite(auxKAlpha))) {
            throw new IllegalArgumentException("AuxK alpha must be >= 0, got " + auxKAlpha);
        }
        if (auxK.isPresent() && auxK.getAsInt() < 1) {
            throw new IllegalArgumentException("AuxK k_aux must be >= 1, got " + auxK.getAsInt());
        }
        if (deadAfterTokens.isPresent() && deadAfterTokens.getAsLong() < 1) {
            throw new IllegalArgumentException("dead-after tokens must be >= 1, got " + deadAfterTokens.getAsLong());
        }
        if (reportEvery < 0) {
            throw new IllegalArgumentException("reportEvery must be >= 0, got " + reportEvery);
        }
    }

    /** One epoch, batch 1024, seed 42, the defaults above. */
    public static TrainingOptions defaults(int dSae, int k) {
        return new TrainingOptions(dSae, k, 1024, OptionalLong.empty(), 1, OptionalDouble.empty(), 42, 1.0 / 32, OptionalInt.empty(),
                OptionalLong.empty(), true, 0);
    }

    public TrainingOptions withBatchSize(int rows) {
        return new TrainingOptions(dSae, k, rows, steps, epochs, learningRate, seed, auxKAlpha, auxK, deadAfterTokens, decoderBias,
                reportEvery);
    }

    public TrainingOptions withSteps(long n) {
        return new TrainingOptions(dSae, k, batchSize, OptionalLong.of(n), epochs, learningRate, seed, auxKAlpha, auxK, deadAfterTokens,
                decoderBias, reportEvery);
    }

    public TrainingOptions withEpochs(int n) {
        return new TrainingOptions(dSae, k, batchSize, OptionalLong.empty(), n, learningRate, seed, auxKAlpha, auxK, deadAfterTokens,
                decoderBias, reportEvery);
    }

    public TrainingOptions withLearningRate(double lr) {
        return new TrainingOptions(dSae, k, batchSize, steps, epochs, OptionalDouble.of(lr), seed, auxKAlpha, auxK, deadAfterTokens,
                decoderBias, reportEvery);
    }

    public TrainingOptions withSeed(long s) {
        return new TrainingOptions(dSae, k, batchSize, steps, epochs, learningRate, s, auxKAlpha, auxK, deadAfterTokens, decoderBias,
                reportEvery);
    }

    public TrainingOptions withAuxK(double alpha, OptionalInt kAux) {
        return new TrainingOptions(dSae, k, batchSize, steps, epochs, learningRate, seed, alpha, kAux, deadAfterTokens, decoderBias,
                reportEvery);
    }

    public TrainingOptions withDeadAfterTokens(long tokens) {
        return new TrainingOptions(dSae, k, batchSize, steps, epochs, learningRate, seed, auxKAlpha, auxK, OptionalLong.of(tokens),
                decoderBias, reportEvery);
    }

    public TrainingOptions withDecoderBias(boolean train) {
        return new TrainingOptions(dSae, k, batchSize, steps, epochs, learningRate, seed, auxKAlpha, auxK, deadAfterTokens, train,
                reportEvery);
    }

    public TrainingOptions withReportEvery(int n) {
        return new TrainingOptions(dSae, k, batchSize, steps, epochs, learningRate, seed, auxKAlpha, auxK, deadAfterTokens, decoderBias,
                n);
    }

    /** The learning rate in force: the given one, else sparsify's {@code 2e-4 / sqrt(d_sae / 2^14)}. */
    public double effectiveLearningRate() {
        return learningRate.orElse(2e-4 / Math.sqrt(dSae / 16384.0));
    }

    /** k_aux in force for inputs of width {@code dIn}. */
    public int effectiveAuxK(int dIn) {
        return auxK.orElse(Math.max(1, dIn / 2));
    }

    /** The dead-latent window in force for a run of {@code totalRows} rows (empty: unknown). */
    public long effectiveDeadAfterTokens(OptionalLong totalRows) {
        if (deadAfterTokens.isPresent()) {
            return deadAfterTokens.getAsLong();
        }
        if (totalRows.isEmpty()) {
            return DEAD_AFTER_TOKENS;
        }
        return Math.min(DEAD_AFTER_TOKENS, Math.max(batchSize, totalRows.getAsLong() / 20));
    }
}
