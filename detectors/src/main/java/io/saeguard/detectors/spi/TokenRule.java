package io.saeguard.detectors.spi;

import java.util.Optional;

/**
 * The run-time half of a rule: scores every token of a chunk. The engine aggregates the token scores
 * over the request ({@code io.saeguard.detectors.spi.Aggregation}) and applies the policy.
 *
 * <p><b>Threading.</b> Used by one thread only (the engine's), so an implementation may keep scratch
 * buffers. <b>Allocation.</b> {@link #score} runs once per chunk and detector on the hot path: it must
 * not allocate per token.
 */
public interface TokenRule {
    /**
     * Writes the score of every token {@code t} in {@code [0, input.tokens())} into {@code tokenScores[t]}
     * (the array may be longer). Tokens with {@code !input.counted(t)} are ignored by the engine: write
     * {@code 0} and do not report their features. For counted tokens, report the rule's features that
     * contributed to {@code tally} (the strongest become the decision's features and steering direction).
     */
    void score(RuleInput input, double[] tokenScores, FeatureTally tally);

    /** The token score at or above which a token "fires" (counts toward {@code count} and {@code fraction}); default {@code 1.0}. */
    default double fireLevel() {
        return 1.0;
    }

    /** Maps the aggregated value to the detector's score; default identity (dsg divides ρ by τ). */
    default double finalScore(double aggregate) {
        return aggregate;
    }

    /** Whether the rule reads raw activations ({@link RuleInput#activations()}). */
    default boolean needsActivations() {
        return false;
    }

    /**
     * The SAE features this rule names (watched for metrics, candidates for steering directions),
     * in definition order; empty for rules that name none (probes).
     */
    default int[] namedFeatures() {
        return new int[0];
    }

    /**
     * Every SAE feature whose code can change this rule's scores: the sidecar encodes only these (with the other
     * detectors' and the metrics' watched features) for every token when the SAE's architecture allows it
     * (docs/algorithms.md#watched-feature-encode), so a chunk's codes may hold nothing else. {@link #score} must
     * read no other feature. Default: {@link #namedFeatures()}.
     */
    default int[] readFeatures() {
        return namedFeatures();
    }

    /** A short human label for a named feature, for alerts. */
    default Optional<String> label(int feature) {
        return Optional.empty();
    }

    /** A longer explanation of a named feature, for alerts. */
    default Optional<String> explanation(int feature) {
        return Optional.empty();
    }

    /**
     * Checks that the rule fits an SAE with dictionary size {@code dSae}; called before the first chunk
     * of each dictionary size. By default, every named feature must lie in {@code [0, dSae)}.
     *
     * @throws IllegalArgumentException describing the mismatch
     */
    default void checkDictionary(int dSae) {
        for (int f : namedFeatures()) {
            if (f >= dSae) {
                throw new IllegalArgumentException("feature " + f + " is outside the SAE's dictionary [0, " + dSae + ")");
            }
        }
    }

    /**
     * Checks that the rule fits activations of width {@code dIn}; called for rules that
     * {@link #needsActivations()} when the engine is built (if the SAE's width is known) and before the
     * first chunk of each width.
     *
     * @throws IllegalArgumentException describing the mismatch
     */
    default void checkActivationWidth(int dIn) {
    }
}
