package io.saeguard.sidecar.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.saeguard.sae.PythonSaeFixtures;
import io.saeguard.sae.TestSeed;
import io.saeguard.sae.compare.Permutations;
import io.saeguard.sidecar.testing.SaeguardJar;
import io.saeguard.topics.safetensors.SafetensorsFile;
import io.saeguard.topics.safetensors.SafetensorsWriter;
import io.saeguard.topics.safetensors.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code saeguard compare-saes} end to end on a real SAE file and the DJL/PyTorch encode: B is A with its features
 * permuted (a relabelled copy), so every A feature's stand-in is known exactly; A's FVU is checked against the FVU of
 * PyTorch's float64 reconstruction of the same input ({@code make_sae.py}).
 */
class CompareSaesIT {
    private static final long SEED = TestSeed.draw("CompareSaesIT");
    private static final int D_IN = 64;
    private static final int D_SAE = 256;
    private static final int TOKENS = 200;

    @TempDir
    Path dir;

    @BeforeAll
    static void python() {
        PythonSaeFixtures.assumeAvailable();
    }

    @Test
    void aPermutedCopyHasPwMccOneAndEveryDetectorFeatureMapsToItsPermutedId() throws Exception {
        // Given SAE A, B = A with features permuted, and a detector reading A's most frequent feature
        Path c = PythonSaeFixtures.generate(dir.resolve("case"), SEED, "--format", "saelens", "--arch", "jumprelu", "--tokens",
                Integer.toString(TOKENS));
        Path a = c.resolve("sae");
        int[] perm = Permutations.random(new Random(SEED), D_SAE);
        Path b = permutedCopy(a, dir.resolve("b"), perm);
        float[] features = SafetensorsFile.open(c.resolve("expected.safetensors")).tensor("features").orElseThrow().toFloatArray();
        int watched = mostFrequent(features);
        Path detector = dir.resolve("d.yaml");
        Files.writeString(detector, """
                id: watched
                sae: sae-a
                rule:
                  kind: features
                  features:
                    - id: %d
                      threshold: 1.0
                aggregate: max
                policy:
                  bands:
                    - min: 1.0
                      action: flag
                """.formatted(watched));
        Path config = dir.resolve("saeguard.yaml");
        Files.writeString(config, """
                saes:
                  - id: sae-a
                    path: %s
                detectors:
                  - %s
                """.formatted(a, detector));
        Path out = dir.resolve("r.json");

        // When
        // (in its own JVM: DJL's engine options are fixed per JVM, and other ITs of this JVM set theirs)
        SaeguardJar.Completed run = SaeguardJar.run(dir, dir.resolve("compare.log"), "compare-saes", a.toString(), b.toString(), "--input",
                c.resolve("input.safetensors").toString(), "--config", config.toString(), "--out", out.toString(), "--threads", "1");

        // Then
        assertThat(run.exitCode()).as(run.output()).isZero();
        JsonNode r = new ObjectMapper().readTree(out.toFile());
        assertThat(r.get("tokens").asInt()).isEqualTo(TOKENS);
        assertThat(r.get("activation_correlation").get("pw_mcc").asDouble()).isCloseTo(1.0, within(1e-6));
        assertThat(r.get("decoder_cosine").get("mean_max_cosine").asDouble()).isCloseTo(1.0, within(1e-5));
        assertThat(r.get("decoder_cosine").get("above_0_9").asInt()).isEqualTo(D_SAE);
        for (JsonNode f : r.get("features")) {
            int i = f.get("a").asInt();
            assertThat(f.get("b_by_cosine").asInt()).as("cosine match of %d", i).isEqualTo(perm[i]);
            if (f.has("b_by_correlation")) {
                assertThat(f.get("b_by_correlation").asInt()).as("correlation match of %d", i).isEqualTo(perm[i]);
            }
        }
        JsonNode row = r.get("detectors").get("watched").get(0);
        assertThat(row.get("a_feature").asInt()).isEqualTo(watched);
        assertThat(row.get("b_feature").asInt()).isEqualTo(perm[watched]);
        assertThat(row.get("cosine").asDouble()).isCloseTo(1.0, within(1e-5));

        // And A's FVU is the FVU of PyTorch's reconstruction, and B's the same
        float[] x = SafetensorsFile.open(c.resolve("input.safetensors")).tensor("activations").orElseThrow().toFloatArray();
        float[] recon = SafetensorsFile.open(c.resolve("expected.safetensors")).tensor("reconstruction").orElseThrow().toFloatArray();
        double reference = fvu(x, recon);
        assertThat(r.get("a").get("fvu").asDouble()).isCloseTo(reference, within(1e-4 * Math.max(1, reference)));
        assertThat(r.get("b").get("fvu").asDouble()).isCloseTo(r.get("a").get("fvu").asDouble(), within(1e-5));
    }

    /** A copy of a SAELens SAE whose feature i becomes feature perm[i]: W_enc's columns, b_enc, threshold and W_dec's rows moved. */
    private static Path permutedCopy(Path a, Path b, int[] perm) throws Exception {
        Files.createDirectories(b);
        Files.copy(a.resolve("cfg.json"), b.resolve("cfg.json"));
        SafetensorsFile w = SafetensorsFile.open(a.resolve("sae_weights.safetensors"));
        SafetensorsWriter out = new SafetensorsWriter().metadata(w.metadata());
        for (Tensor t : w.tensors()) {
            float[] v = t.toFloatArray();
            float[] p = new float[v.length];
            switch (t.name()) {
                case "W_enc" -> {
                    for (int k = 0; k < D_IN; k++) {
                        for (int i = 0; i < D_SAE; i++) {
                            p[k * D_SAE + perm[i]] = v[k * D_SAE + i];
                        }
                    }
                }
                case "W_dec" -> {
                    for (int i = 0; i < D_SAE; i++) {
                        System.arraycopy(v, i * D_IN, p, perm[i] * D_IN, D_IN);
                    }
                }
                case "b_enc", "threshold" -> {
                    for (int i = 0; i < D_SAE; i++) {
                        p[perm[i]] = v[i];
                    }
                }
                default -> p = v;
            }
            out.addF32(t.name(), t.shape(), p);
        }
        out.writeTo(b.resolve("sae_weights.safetensors"));
        return b;
    }

    private static int mostFrequent(float[] features) {
        int best = 0;
        int bestCount = -1;
        for (int f = 0; f < D_SAE; f++) {
            int n = 0;
            for (int t = 0; t < TOKENS; t++) {
                n += features[t * D_SAE + f] > 0 ? 1 : 0;
            }
            if (n > bestCount) {
                bestCount = n;
                best = f;
            }
        }
        return best;
    }

    /** FVU in float64, two passes: Σ‖x − x̂‖² / Σ‖x − x̄‖². */
    private static double fvu(float[] x, float[] recon) {
        double[] mean = new double[D_IN];
        for (int t = 0; t < TOKENS; t++) {
            for (int k = 0; k < D_IN; k++) {
                mean[k] += x[t * D_IN + k] / (double) TOKENS;
            }
        }
        double res = 0;
        double tot = 0;
        for (int t = 0; t < TOKENS; t++) {
            for (int k = 0; k < D_IN; k++) {
                double e = x[t * D_IN + k] - (double) recon[t * D_IN + k];
                double d = x[t * D_IN + k] - mean[k];
                res += e * e;
                tot += d * d;
            }
        }
        return res / tot;
    }
}
