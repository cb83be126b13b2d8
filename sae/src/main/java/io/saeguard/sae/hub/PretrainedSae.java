package io.saeguard.sae.hub;

import java.util.Optional;
import java.util.OptionalDouble;

/**
 * One SAE of SAELens's release table: where its files are on the Hugging Face Hub ({@code repoId}, {@code path}
 * inside the repository), what reads them ({@code conversion}), and the settings SAELens keeps in the table rather
 * than in the files ({@code normScalingFactor}, the release's {@code normalize_activations} override).
 */
public record PretrainedSae(String release, String saeId, String repoId, String model, Conversion conversion, String path,
        OptionalDouble normScalingFactor, Optional<String> normalizeActivations) {

    /** {@code release/sae_id}, for messages and logs. */
    public String name() {
        return release + "/" + saeId;
    }
}
