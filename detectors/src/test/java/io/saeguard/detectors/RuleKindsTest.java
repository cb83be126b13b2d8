package io.saeguard.detectors;

import io.saeguard.detectors.spi.Aggregation;
import static io.saeguard.detectors.TestChunks.D_SAE;
import static io.saeguard.detectors.TestChunks.SAE;
import static io.saeguard.detectors.TestChunks.chunk;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.saeguard.detectors.rules.ProbeWeights;
import io.saeguard.topics.events.Action;
import io.saeguard.topics.events.FeatureRef;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RuleKindsTest {
    private static final long SEED = System.nanoTime();

    static {
        System.out.println("RuleKindsTest seed: " + SEED);
    }

    private static DetectorEngine engine(DetectorDefinition d, DecoderDirections directions) {
        return DetectorEngine.create(List.of(d), directions, new StateLimits(Duration.ofMinutes(1), 10));
    }

    private static double sigmoid(double z) {
        return 1 / (1 + Math.exp(-z));
    }

    @Test
    void serviceLoaderFindsTheBuiltInKinds() {
        assertThat(DetectorKinds.names()).isEqualTo("dsg, features, probe, raw-probe");
    }

    @Test
    void probeTokenScoreIsTheLogisticOfTheSparseDotProduct(@TempDir Path dir) throws Exception {
        // Given random weights and codes (seed printed)
        Random rnd = new Random(SEED);
        float[] w = new float[D_SAE];
        for (int f = 0; f < D_SAE; f++) {
            w[f] = (float) rnd.nextGaussian();
        }
        double b = -0.3f; // stored as F32
        ProbeWeights.write(dir.resolve("probe.safetensors"), w, b);
        float[][] rows = new float[5][D_SAE];
        for (float[] row : rows) {
            for (int k = 0; k < 6; k++) {
                row[rnd.nextInt(D_SAE)] = (float) (rnd.nextDouble() * 3);
            }
        }
        DetectorDefinition d = Yaml.definition("""
                id: p
                sae: sae-test
                rule: {kind: probe, weights: probe.safetensors}
                aggregate: mean
                policy: {}
                """, dir);

        // When
        double score = engine(d, DecoderDirections.none()).evaluate(chunk("r", 1, rows).build(), 0).verdicts().get(0).score();

        // Then: an independent dense computation
        double sum = 0;
        for (float[] row : rows) {
            double z = b;
            for (int f = 0; f < D_SAE; f++) {
                z += w[f] * (double) row[f];
            }
            sum += sigmoid(z);
        }
        assertThat(score).isCloseTo(sum / rows.length, within(1e-9));
    }

    @Test
    void probeTokensFireAtFireAtAndNameTheirPositiveContributors(@TempDir Path dir) throws Exception {
        // Given: p = σ(a₂ - a₇ - 1)
        float[] w = new float[D_SAE];
        w[2] = 1;
        w[7] = -1;
        ProbeWeights.write(dir.resolve("probe.safetensors"), w, -1);
        DetectorDefinition d = Yaml.definition("""
                id: p
                sae: sae-test
                rule: {kind: probe, weights: probe.safetensors, fire_at: 0.8}
                aggregate: count
                policy: {alert_at: 1.0, vector_feature: 2, bands: [{min: 1.0, action: flag}]}
                """, dir);
        float[][] rows = new float[3][D_SAE];
        rows[0][2] = 4; // σ(3) = 0.95 fires
        rows[1][2] = 2; // σ(1) = 0.73 does not
        rows[2][2] = 9;
        rows[2][7] = 9; // σ(-1) does not

        // When
        ChunkOutcome out = engine(d, TestDirections.simple(SAE, D_SAE, 4)).evaluate(chunk("r", 1, rows).build(), 0);

        // Then
        assertThat(out.verdicts().get(0).score()).isEqualTo(1.0);
        assertThat(out.decision().features()).containsExactly(new FeatureRef(SAE, 2, 4.0));
        assertThat(out.alerts().get(0).positions()).containsExactly(1L);
    }

    @Test
    void probeOfTheWrongDictionarySizeFailsAtTheFirstChunk(@TempDir Path dir) throws Exception {
        ProbeWeights.write(dir.resolve("probe.safetensors"), new float[10], 0);
        DetectorDefinition d = Yaml.definition("id: p\nsae: sae-test\nrule: {kind: probe, weights: probe.safetensors}\npolicy: {}\n", dir);
        DetectorEngine engine = engine(d, DecoderDirections.none());

        assertThat(engine.evaluate(chunk("r", 1, new float[1][D_SAE]).build(), 0).verdicts().get(0).failure())
                .hasValueSatisfying(f -> assertThat(f.message()).contains("probe has 10 weights but the SAE has d_sae = 64"));
    }

    @Test
    void rawProbeScoresRawActivations(@TempDir Path dir) throws Exception {
        // Given
        Random rnd = new Random(SEED + 1);
        int dIn = 6;
        float[] w = new float[dIn];
        for (int i = 0; i < dIn; i++) {
            w[i] = (float) rnd.nextGaussian();
        }
        ProbeWeights.write(dir.resolve("raw.safetensors"), w, 0.25);
        float[] x = new float[3 * dIn];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        DetectorDefinition d = Yaml.definition("id: raw\nsae: sae-test\nrule: {kind: raw-probe, weights: raw.safetensors}\naggregate: max\npolicy: {}\n", dir);
        DetectorEngine engine = engine(d, TestDirections.simple(SAE, D_SAE, dIn));

        // When
        double score = engine.evaluate(chunk("r", 1, new float[3][D_SAE]).activations(x, dIn).build(), 0).verdicts().get(0).score();

        // Then
        double best = 0;
        for (int t = 0; t < 3; t++) {
            double z = 0.25;
            for (int i = 0; i < dIn; i++) {
                z += w[i] * (double) x[t * dIn + i];
            }
            best = Math.max(best, sigmoid(z));
        }
        assertThat(engine.needsActivations(SAE)).isTrue();
        assertThat(score).isCloseTo(best, within(1e-9));
    }

    @Test
    void rawProbeWithoutActivationsInTheChunkFails(@TempDir Path dir) throws Exception {
        ProbeWeights.write(dir.resolve("raw.safetensors"), new float[4], 0);
        DetectorDefinition d = Yaml.definition("id: raw\nsae: sae-test\nrule: {kind: raw-probe, weights: raw.safetensors}\npolicy: {}\n", dir);
        DetectorEngine engine = engine(d, DecoderDirections.none());

        assertThat(engine.evaluate(chunk("r", 1, new float[1][D_SAE]).build(), 0).verdicts().get(0).failure())
                .hasValueSatisfying(f -> assertThat(f.message()).contains("reads raw activations, but the chunk of request r carries none"));
    }

    @Test
    void rawProbeOfTheWrongWidthIsRejectedWhenTheEngineIsBuilt(@TempDir Path dir) throws Exception {
        ProbeWeights.write(dir.resolve("raw.safetensors"), new float[4], 0);
        DetectorDefinition d = Yaml.definition("id: raw\nsae: sae-test\nrule: {kind: raw-probe, weights: raw.safetensors}\npolicy: {}\n", dir);

        assertThatThrownBy(() -> engine(d, TestDirections.simple(SAE, D_SAE, 8)))
                .hasMessageContaining("raw probe has 4 weights but the activations have d_in = 8");
    }

    private static String dsg(String extra) {
        return """
                id: bio
                sae: sae-test
                rule:
                  kind: dsg
                  tau: 0.25
                %s  features:
                    - 3
                    - {id: 5, threshold: 2.0, label: five}
                policy: {bands: [{min: 1.0, action: block}]}
                """.formatted(extra);
    }

    @Test
    void dsgScoresRhoOverTau() {
        // Given fired tokens: a₃ > 0 or a₅ > 2. Tokens: a₃=1 (fires), a₅=2 (exactly the threshold: does not), a₅=3 (fires), nothing
        DetectorEngine engine = engine(Yaml.definition(dsg("")), DecoderDirections.none());
        float[][] rows = new float[4][D_SAE];
        rows[0][3] = 1;
        rows[1][5] = 2;
        rows[2][5] = 3;

        // When
        ChunkOutcome out = engine.evaluate(chunk("r", 1, rows).build(), 0);

        // Then: ρ = 2/4, score = ρ / τ = 2
        assertThat(out.verdicts().get(0).score()).isCloseTo((2.0 / 4) / 0.25, within(1e-12));
        assertThat(out.decision().action()).isEqualTo(Action.BLOCK);
        assertThat(out.decision().reason()).get().asString().contains("(rho/tau)");
    }

    @Test
    void dsgAtRhoEqualToTauScoresExactlyOneAndReachesABandAtOne() {
        DetectorEngine engine = engine(Yaml.definition(dsg("")), DecoderDirections.none());
        float[][] rows = new float[4][D_SAE];
        rows[0][3] = 1;

        ChunkOutcome out = engine.evaluate(chunk("r", 1, rows).build(), 0);

        assertThat(out.verdicts().get(0).score()).isEqualTo(1.0);
        assertThat(out.decision().action()).isEqualTo(Action.BLOCK);
    }

    @Test
    void windowedDsgIsDeclaredUnderTheRule() {
        DetectorDefinition d = Yaml.definition(dsg("  window: 2\n"));

        assertThat(d.aggregate()).isEqualTo(Aggregation.fraction(2));
    }
}
