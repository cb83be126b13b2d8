package io.saeguard.detectors;

import static io.saeguard.detectors.TestChunks.D_SAE;
import static io.saeguard.detectors.TestChunks.SAE;
import static org.assertj.core.api.Assertions.assertThat;

import io.saeguard.detectors.rules.ProbeWeights;
import io.saeguard.topics.codes.SparseCodes;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The sidecar may hand detectors only the codes of {@link DetectorEngine#watchedFeatures()} (its watched-feature encode,
 * docs/algorithms.md#watched-feature-encode): every decision, score, verdict, alert (features, positions) and steering
 * direction must then be what the full codes give.
 */
class WatchedCodesTest {
    private static final long SEED = System.nanoTime();

    static {
        System.out.println("WatchedCodesTest seed: " + SEED);
    }

    private static final String FEATURES = """
            id: feat
            sae: sae-test
            rule:
              kind: features
              match: any
              features:
                - {id: 3, threshold: 1.5, label: three}
                - {id: 17, threshold: 2.5}
            aggregate: max
            policy:
              alert_at: 1.0
              bands:
                - {min: 1.0, action: steer, coefficient: -2.0, tier: medium}
                - {min: 2.0, action: clamp, value: -1.0}
            """;
    private static final String DSG = """
            id: dsg
            sae: sae-test
            rule:
              kind: dsg
              tau: 0.2
              features:
                - 9
                - {id: 40, threshold: 1.0}
            policy: {alert_at: 1.0, bands: [{min: 1.0, action: clamp, value: -0.5}]}
            """;
    private static final String WINDOWED_DSG = """
            id: dsg-window
            sae: sae-test
            rule:
              kind: dsg
              tau: 0.3
              window: 4
              features: [12, 33]
            policy: {alert_at: 1.0, bands: [{min: 1.0, action: flag}]}
            """;
    private static final String PROBE = """
            id: probe
            sae: sae-test
            rule: {kind: probe, weights: probe.safetensors, fire_at: 0.6}
            aggregate: mean
            policy: {alert_at: 0.5, bands: [{min: 0.5, action: flag}, {min: 0.7, action: block}]}
            """;

    @Test
    void probesWatchTheirNonZeroWeights(@TempDir Path dir) throws Exception {
        // Given a probe weighting features 2, 30 and 63 only
        float[] w = new float[D_SAE];
        w[2] = 1f;
        w[30] = -0.5f;
        w[63] = 2f;
        ProbeWeights.write(dir.resolve("probe.safetensors"), w, 0);

        // When the engine is built
        DetectorEngine engine = engine(List.of(Yaml.definition(PROBE, dir)));

        // Then those three features are watched
        assertThat(engine.watchedFeatures()).isEqualTo(Map.of(SAE, Set.of(2, 30, 63)));
    }

    @Test
    void detectorsDecideOnWatchedCodesExactlyAsOnFullCodes(@TempDir Path dir) throws Exception {
        // Given every SAE rule kind (features with steer/clamp, DSG, windowed DSG, a probe with sparse weights)
        Random rnd = new Random(SEED);
        float[] w = new float[D_SAE];
        for (int f = 0; f < D_SAE; f += 5) {
            w[f] = (float) rnd.nextGaussian();
        }
        ProbeWeights.write(dir.resolve("probe.safetensors"), w, -0.2);
        List<DetectorDefinition> defs = List.of(Yaml.definition(FEATURES), Yaml.definition(DSG), Yaml.definition(WINDOWED_DSG),
                Yaml.definition(PROBE, dir));
        DetectorEngine full = engine(defs);
        DetectorEngine watchedOnly = engine(defs);
        Set<Integer> watched = full.watchedFeatures().get(SAE);

        // When random requests' chunks (BOS and marked special tokens included) go to one engine whole and to the
        // other with only the watched features' codes
        int acted = 0;
        int alerts = 0;
        for (int request = 0; request < 40; request++) {
            long position = 0;
            for (int c = 0; c < 4; c++) {
                int tokens = 1 + rnd.nextInt(8);
                float[][] rows = new float[tokens][D_SAE];
                boolean[] special = new boolean[tokens];
                for (int t = 0; t < tokens; t++) {
                    for (int f = 0; f < D_SAE; f++) {
                        if (rnd.nextDouble() < 0.15) {
                            rows[t][f] = (float) (rnd.nextDouble() * 4);
                        }
                    }
                    special[t] = rnd.nextDouble() < 0.1;
                }
                SparseCodes codes = TestChunks.codes(SAE, D_SAE, rows);
                String id = "r" + request;
                boolean last = c == 3;
                ChunkOutcome want = full.evaluate(build(id, position, codes, special, last), 1000, 0);
                ChunkOutcome got = watchedOnly.evaluate(build(id, position, onlyWatched(codes, watched), special, last), 1000, 0);

                // Then both engines give the same outcome
                assertThat(got).as("request %d chunk %d (seed %d)", request, c, SEED).isEqualTo(want);
                acted += want.decision().action() != io.saeguard.topics.events.Action.ALLOW ? 1 : 0;
                alerts += want.alerts().size();
                position += tokens;
            }
        }
        assertThat(acted).as("some chunks were acted on").isPositive();
        assertThat(alerts).as("some alerts were raised").isPositive();
        assertThat(watchedOnly.steeringVectors()).usingRecursiveComparison().isEqualTo(full.steeringVectors());
    }

    private static Chunk build(String id, long position, SparseCodes codes, boolean[] special, boolean last) {
        TestChunks.Builder b = TestChunks.chunk(id, position, codes).special(special);
        return last ? b.last().build() : b.build();
    }

    /** The codes a watched-feature encode gives: the watched features' entries, in the same order. */
    private static SparseCodes onlyWatched(SparseCodes codes, Set<Integer> watched) {
        int[] rowStart = new int[codes.tokens() + 1];
        List<Integer> idx = new ArrayList<>();
        List<Float> val = new ArrayList<>();
        for (int t = 0; t < codes.tokens(); t++) {
            rowStart[t] = idx.size();
            for (int j = 0; j < codes.activeCount(t); j++) {
                if (watched.contains(codes.featureAt(t, j))) {
                    idx.add(codes.featureAt(t, j));
                    val.add(codes.valueAt(t, j));
                }
            }
        }
        rowStart[codes.tokens()] = idx.size();
        float[] v = new float[val.size()];
        for (int i = 0; i < v.length; i++) {
            v[i] = val.get(i);
        }
        return SparseCodes.ofCsr(codes.sae(), codes.dSae(), rowStart, idx.stream().mapToInt(Integer::intValue).toArray(), v);
    }

    private static DetectorEngine engine(List<DetectorDefinition> defs) {
        return DetectorEngine.create(defs, TestDirections.simple(SAE, D_SAE, 8), new StateLimits(Duration.ofSeconds(60), 1000));
    }
}
