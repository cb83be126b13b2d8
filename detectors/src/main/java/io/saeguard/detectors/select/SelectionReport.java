package io.saeguard.detectors.select;

import java.util.List;
import java.util.Optional;
import java.util.OptionalDouble;

/**
 * What {@link FeatureSelection} did and how well the result works; {@link MarkdownReport} renders it.
 *
 * @param options             the options used
 * @param features            the chosen features, in rank order
 * @param candidates          features that passed the ranking's filters before LangFIR and the top-N cut
 * @param droppedByRandom     candidates LangFIR removed (firing on random tokens at or above the limit), in rank order
 * @param tau                 dsg: the calibrated τ
 * @param calibration         how thresholds or τ were calibrated, in words
 * @param evaluationUnit      {@code "example"} or {@code "token"}
 * @param trainPositives      positive examples used for selection and calibration
 * @param trainNegatives      negative examples used for selection and calibration
 * @param detector            the written detector on the held-out examples (operating threshold: score 1)
 * @param baseline            the raw-probe baseline on the same held-out examples (threshold 0.5), when
 *                            both sets carried activations
 * @param baselineNote        how the baseline was trained, or why there is none
 */
public record SelectionReport(SelectionOptions options, List<ChosenFeature> features, int candidates,
        List<Integer> droppedByRandom, OptionalDouble tau, String calibration, String evaluationUnit, int trainPositives,
        int trainNegatives, ClassifierMetrics detector, Optional<ClassifierMetrics> baseline, String baselineNote) {
    public SelectionReport {
        features = List.copyOf(features);
        droppedByRandom = List.copyOf(droppedByRandom);
    }
}
