package io.saeguard.sae;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.saeguard.sae.format.SaeLoader;
import io.saeguard.topics.safetensors.SafetensorsWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Broken SAE directories fail with a message that names the file, the tensor, and expected vs found. */
class SaeFormatErrorsIT {
    @TempDir
    Path dir;

    private Path saelens(String cfg, SafetensorsWriter weights) throws Exception {
        Files.writeString(dir.resolve("cfg.json"), cfg);
        weights.writeTo(dir.resolve("sae_weights.safetensors"));
        return dir;
    }

    private static SafetensorsWriter weights(int dIn, int dSae) {
        return new SafetensorsWriter().addF32("W_enc", new long[] {dIn, dSae}, new float[dIn * dSae])
                .addF32("b_enc", new long[] {dSae}, new float[dSae]).addF32("W_dec", new long[] {dSae, dIn}, new float[dIn * dSae])
                .addF32("b_dec", new long[] {dIn}, new float[dIn]);
    }

    @Test
    void wellFormedSaeLensDirectoryLoadsWithItsHookAndModel() throws Exception {
        Path p = saelens("{\"architecture\":\"standard\",\"d_in\":4,\"d_sae\":6,\"metadata\":{\"hook_name\":\"blocks.1.hook_resid_post\","
                + "\"model_name\":\"m\"}}", weights(4, 6));

        Sae sae = SaeLoader.load(p);

        assertThat(sae.config().architecture()).isEqualTo(Architecture.STANDARD);
        assertThat(sae.config().hook()).contains("blocks.1.hook_resid_post");
        assertThat(sae.config().model()).contains("m");
        assertThat(sae.config().applyBDecToInput()).isTrue();
    }

    @Test
    void matrixStoredTransposedIsAcceptedWhenTheShapeSaysSo() throws Exception {
        // W_enc stored [d_sae, d_in] (Qwen-Scope's convention) under SAELens' name.
        SafetensorsWriter w = new SafetensorsWriter().addF32("W_enc", new long[] {6, 4}, new float[24])
                .addF32("b_enc", new long[] {6}, new float[6]).addF32("W_dec", new long[] {6, 4}, new float[24])
                .addF32("b_dec", new long[] {4}, new float[4]);

        SingleSae sae = (SingleSae) SaeLoader.load(saelens("{\"d_in\":4,\"d_sae\":6}", w));

        assertThat(sae.wEnc().transposed()).isTrue();
        assertThat(sae.wEnc().shape()).containsExactly(4, 6);
    }

    @Test
    void shapeThatDisagreesWithTheConfigNamesFileTensorAndBothShapes() throws Exception {
        Path p = saelens("{\"d_in\":4,\"d_sae\":8}", weights(4, 6));

        assertThatThrownBy(() -> SaeLoader.load(p)).isInstanceOf(SaeFormatException.class)
                .hasMessageContaining("sae_weights.safetensors").hasMessageContaining("'W_enc'")
                .hasMessageContaining("expected shape [4, 8]").hasMessageContaining("found [4, 6]");
    }

    @Test
    void missingTensorListsWhatTheFileHas() throws Exception {
        SafetensorsWriter w = new SafetensorsWriter().addF32("W_enc", new long[] {4, 6}, new float[24]);
        Path p = saelens("{\"d_in\":4,\"d_sae\":6}", w);

        assertThatThrownBy(() -> SaeLoader.load(p)).isInstanceOf(SaeFormatException.class)
                .hasMessageContaining("no tensor 'b_enc'").hasMessageContaining("found: W_enc");
    }

    @Test
    void unknownArchitectureListsTheSupportedOnes() throws Exception {
        Path p = saelens("{\"architecture\":\"transcoder\",\"d_in\":4,\"d_sae\":6}", weights(4, 6));

        assertThatThrownBy(() -> SaeLoader.load(p)).isInstanceOf(SaeFormatException.class)
                .hasMessageContaining("cfg.json").hasMessageContaining("'transcoder'").hasMessageContaining("jumprelu, topk");
    }

    @Test
    void jumpReluWithoutThresholdIsRejected() throws Exception {
        Path p = saelens("{\"architecture\":\"jumprelu\",\"d_in\":4,\"d_sae\":6}", weights(4, 6));

        assertThatThrownBy(() -> SaeLoader.load(p)).isInstanceOf(SaeFormatException.class).hasMessageContaining("no tensor 'threshold'");
    }

    @Test
    void expectedAverageNormalisationWithoutItsFactorSaysWhereToPutIt() throws Exception {
        Path p = saelens("{\"d_in\":4,\"d_sae\":6,\"normalize_activations\":\"expected_average_only_in\"}", weights(4, 6));

        assertThatThrownBy(() -> SaeLoader.load(p)).isInstanceOf(SaeFormatException.class)
                .hasMessageContaining("norm_scaling_factor");
    }

    @Test
    void unrecognisedDirectoryListsItsFilesAndTheKnownLayouts() throws Exception {
        Files.writeString(dir.resolve("model.bin"), "x");

        assertThatThrownBy(() -> SaeLoader.load(dir)).isInstanceOf(SaeFormatException.class)
                .hasMessageContaining("model.bin").hasMessageContaining("params.npz (Gemma Scope)");
    }

    @Test
    void missingPathIsReported() {
        assertThatThrownBy(() -> SaeLoader.load(dir.resolve("nope"))).isInstanceOf(SaeFormatException.class)
                .hasMessageContaining("nope").hasMessageContaining("no such SAE directory");
    }

    @Test
    void corruptWeightsFileIsReportedWithThePath() throws Exception {
        Files.writeString(dir.resolve("cfg.json"), "{\"d_in\":4,\"d_sae\":6}");
        Files.write(dir.resolve("sae_weights.safetensors"), new byte[] {1, 2, 3});

        assertThatThrownBy(() -> SaeLoader.load(dir)).isInstanceOf(SaeFormatException.class)
                .hasMessageContaining("sae_weights.safetensors").hasMessageContaining("shorter than the 8-byte header");
    }
}
