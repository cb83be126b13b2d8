package io.saeguard.sae.hub;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class SaeReleasesTest {
    @Test
    void theShippedTableSaysWhichSaeLensVersionAndLicenceItCameFrom() {
        assertThat(SaeReleases.bundled().source()).contains("SAELens 6.18.0").contains("91ca16ccd0684e4dd6323cd4f23ded734339ec54")
                .contains("MIT");
        assertThat(SaeReleases.class.getResource("SAELENS-LICENSE")).isNotNull();
    }

    @Test
    void everyReleaseOfTheShippedTableHasAConversionSaeguardKnows() {
        // parse() refuses an unknown conversion, so reading the table is the check
        assertThat(SaeReleases.bundled().releases()).hasSizeGreaterThan(70).contains("gemma-scope-2b-pt-res", "gpt2-small-res-jb");
    }

    @Test
    void aGemmaScopeSaeResolvesToItsRepositoryAndPath() throws Exception {
        // When
        PretrainedSae sae = SaeReleases.bundled().find("gemma-scope-2b-pt-res-canonical", "layer_20/width_16k/canonical");

        // Then
        assertThat(sae.repoId()).isEqualTo("google/gemma-scope-2b-pt-res");
        assertThat(sae.path()).isEqualTo("layer_20/width_16k/average_l0_71");
        assertThat(sae.conversion()).isEqualTo(Conversion.GEMMA_2);
        assertThat(sae.conversion().requiredFiles()).containsExactly("params.npz");
    }

    @Test
    void anUnknownReleaseIsAnErrorSuggestingCloseNames() {
        assertThatThrownBy(() -> SaeReleases.bundled().find("gemma-scope-2b-pt-rez", "x")).isInstanceOf(SaeSourceException.class)
                .hasMessageContaining("unknown SAE release 'gemma-scope-2b-pt-rez'").hasMessageContaining("gemma-scope-2b-pt-res");
    }

    @Test
    void anUnknownSaeIdIsAnErrorNamingTheReleaseAndSomeOfItsIds() {
        assertThatThrownBy(() -> SaeReleases.bundled().find("gpt2-small-res-jb", "blocks.99.hook_resid_pre"))
                .isInstanceOf(SaeSourceException.class).hasMessageContaining("release 'gpt2-small-res-jb' has no SAE with id "
                        + "'blocks.99.hook_resid_pre'").hasMessageContaining("blocks.");
    }

    @Test
    void onlyTheThreeFormatsSaeguardLoadsAreSupported() {
        assertThat(Conversion.values()).filteredOn(Conversion::supported)
                .containsExactlyInAnyOrder(Conversion.SAE_LENS, Conversion.GEMMA_2, Conversion.LLAMA_SCOPE);
    }
}
