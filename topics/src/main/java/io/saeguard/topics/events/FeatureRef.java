package io.saeguard.topics.events;

/**
 * One SAE feature that contributed to a decision: wire form {@code {"sae", "id", "value"}}.
 *
 * @param sae   id of the SAE the feature belongs to (non-empty)
 * @param id    feature index in that SAE's dictionary, {@code 0 <= id < d_sae}
 * @param value the feature's activation (or the detector's aggregate of it over the request), finite
 */
public record FeatureRef(String sae, int id, double value) {
    public FeatureRef {
        EventInvariants.nonEmpty(sae, "sae");
        EventInvariants.nonNegative(id, "id");
        EventInvariants.finite(value, "value");
    }
}
