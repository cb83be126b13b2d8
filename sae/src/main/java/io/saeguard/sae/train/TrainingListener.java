package io.saeguard.sae.train;

/**
 * Receives {@link TopKTrainer}'s progress, on the trainer's thread; implementations must return
 * quickly (they print, they do not compute).
 */
public interface TrainingListener {
    /** Ignores everything. */
    TrainingListener NONE = p -> {
    };

    /** Every {@link TrainingOptions#reportEvery()} steps and after the last step. */
    void progress(TrainingProgress progress);

    /** A phase outside the optimisation loop starts, e.g. measuring the firing density. */
    default void phase(String description) {
    }
}
