package io.saeguard.detectors.select;

import java.util.OptionalDouble;

/**
 * A selected feature with the statistics behind its choice (training split).
 *
 * @param id                feature index
 * @param meanPositive      mean activation on positive tokens, {@code m^F}
 * @param meanNegative      mean activation on negative tokens, {@code m^R}
 * @param frequencyPositive fraction of positive tokens where it fires
 * @param frequencyNegative fraction of negative tokens where it fires
 * @param frequencyRandom   fraction of random tokens where it fires (LangFIR), when a random set was given
 * @param importanceRatio   DSG {@code (m^F)² / ((m^R)² + 1e-21)} (§1.1)
 * @param meanDifference    {@code m^F − m^R}
 * @param threshold         the written threshold (features rule), or the dsg firing threshold (0)
 */
public record ChosenFeature(int id, double meanPositive, double meanNegative, double frequencyPositive,
        double frequencyNegative, OptionalDouble frequencyRandom, double importanceRatio, double meanDifference,
        double threshold) {
}
