package io.saeguard.detectors.spi;

/**
 * Where a rule reports the features behind its token scores. The engine keeps, per chunk, the
 * strongest observation of each feature and uses the strongest features as the decision's features
 * and (for named features) its steering direction. Cheap: a bounded top-k, no allocation.
 */
public interface FeatureTally {
    /**
     * Reports that {@code feature} had activation {@code value} at a counted token and contributed
     * {@code strength} to that token's score (e.g. activation / threshold). Larger is stronger; only
     * the largest strength per feature is kept.
     */
    void observe(int feature, float value, double strength);
}
