package io.saeguard.detectors.select;

import io.saeguard.detectors.DetectorDefinition;

/**
 * The outcome of {@link FeatureSelection#select}: a ready detector and the report behind it.
 *
 * @param detector the detector (write it with {@code DetectorDefinitions.toYaml})
 * @param report   chosen features, statistics and held-out metrics
 */
public record SelectionResult(DetectorDefinition detector, SelectionReport report) {
}
