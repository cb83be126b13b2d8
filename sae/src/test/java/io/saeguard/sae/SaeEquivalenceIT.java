package io.saeguard.sae;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.saeguard.sae.engine.DeviceSae;
import io.saeguard.sae.engine.DeviceSpec;
import io.saeguard.sae.engine.EngineOptions;
import io.saeguard.sae.engine.SaeEngine;
import io.saeguard.sae.format.SaeLoader;
import io.saeguard.topics.codes.SparseCodes;
import io.saeguard.topics.safetensors.SafetensorsFile;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every SAE format and architecture, generated at random by {@code make_sae.py} and encoded by
 * PyTorch (float64, from the formulas of docs/algorithms.md#sae-encoders), must match the Java/DJL engine:
 * normwise relative error ≤ 1e-5 on codes and reconstructions, identical active sets except
 * features whose decision value lies within 1e-6 (relative) of the cut. Fresh seed per run, printed;
 * {@code -Dsaeguard.it.seed=N} replays one ({@link TestSeed}).
 */
class SaeEquivalenceIT {
    static final long SEED = TestSeed.draw("SaeEquivalenceIT");
    static final double TOLERANCE = 1e-5;
    static final double TIE = 1e-6;
    private static SaeEngine engine;

    @TempDir
    Path dir;

    @BeforeAll
    static void startEngine() {
        PythonSaeFixtures.assumeAvailable();
        engine = SaeEngine.start(new EngineOptions(DeviceSpec.CPU, EngineOptions.defaultCacheDir(), 2, 1, false));
    }

    @AfterAll
    static void stopEngine() {
        if (engine != null) {
            engine.close();
        }
    }

    static Stream<String> cases() {
        return Stream.of(
                "--format saelens --arch standard",
                "--format saelens --arch standard --apply-b-dec 0",
                "--format saelens --arch jumprelu",
                "--format saelens --arch jumprelu --weights-dtype BF16",
                "--format saelens --arch topk --k 8",
                "--format saelens --arch topk --k 8 --rescale-by-decoder-norm 1",
                "--format saelens --arch batchtopk",
                "--format saelens --arch abstopk --k 8",
                "--format saelens --arch gated",
                "--format saelens --arch standard --norm expected_average_only_in",
                "--format saelens --arch jumprelu --norm constant_norm_rescale",
                "--format saelens --arch topk --k 8 --norm layer_norm",
                "--format saelens --arch standard --cfg-version 5",
                "--format saelens --arch topk --k 8 --cfg-version 5",
                "--format saelens --arch jumprelu --cfg-version 5",
                "--format saelens --arch gated --cfg-version 5",
                "--format saelens --arch jumprelu --sparsity 1",
                "--format gemma-scope --arch jumprelu",
                "--format gemma-scope --arch jumprelu --npz-compressed 1",
                "--format gemma-scope-2 --arch jumprelu",
                "--format sparsify --arch topk --k 8",
                "--format sparsify --arch topk --k 8 --weights-dtype BF16",
                "--format llama-scope --arch jumprelu",
                "--format composed --arch topk --residual-input error",
                "--format composed --arch jumprelu --residual-input input",
                "--format composed --arch jumprelu --residual-input error",
                "--format saelens --arch gated --norm layer_norm",
                "--format saelens --arch batchtopk --norm constant_norm_rescale --apply-b-dec 0",
                // tokens × d_sae = 4,259,840 ≥ DeviceSae.MASKED_FILL_MIN_ELEMENTS: the masked_fill_ path of every mask
                BIG + " --arch standard",
                BIG + " --arch jumprelu",
                BIG + " --arch topk --k 8",
                BIG + " --arch abstopk --k 8",
                BIG + " --arch gated");
    }

    /** A batch large enough for the engine's masked_fill_ path (checked in the test). */
    private static final String BIG = "--format saelens --d-in 16 --d-sae 16384 --tokens 260";

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void javaEncoderMatchesThePyTorchReference(String args) throws Exception {
        // Given a random SAE, inputs and PyTorch's outputs
        long seed = Math.floorMod(SEED + args.hashCode(), 1L << 31);
        Path out = PythonSaeFixtures.generate(dir, seed, args.split(" "));
        JsonNode caseJson = new ObjectMapper().readTree(out.resolve("case.json").toFile());
        PythonSaeFixtures.Reference ref = PythonSaeFixtures.Reference.read(out);
        float[] x = ref.x();
        float[] wantFeatures = ref.features();
        float[] wantRecon = ref.reconstruction();
        float[] decision = ref.pre();
        float[] cut = ref.cut();

        // When Java loads and encodes it
        Sae sae = SaeLoader.load(out.resolve("sae"));
        int dIn = sae.config().dIn();
        int dSae = sae.config().dSae();
        int tokens = x.length / dIn;
        DeviceSae.Dense dense;
        SparseCodes codes;
        int[] watched = watchedSample(seed, dSae, sae);
        SparseCodes watchedCodes = null;
        try (DeviceSae device = engine.load(sae, dSae)) {
            dense = device.encodeDense(x, tokens, true);
            codes = device.encode("test", x, tokens);
            if (device.encodesWatchedAlone()) {
                device.watch(Arrays.stream(watched).boxed().toList());
                watchedCodes = device.encodeWatched("test", x, tokens, false);
            }
        }
        boolean perFeature = switch (sae.config().architecture()) {
            case STANDARD, JUMPRELU, BATCHTOPK, GATED -> true;
            case COMPOSED -> args.contains("--arch jumprelu");
            default -> false;
        };
        assertThat(watchedCodes != null).as("watched-feature encode offered (%s)", args).isEqualTo(perFeature);

        if (args.startsWith(BIG)) {
            assertThat((long) tokens * dSae).as("large case covers the masked_fill_ path").isGreaterThanOrEqualTo(DeviceSae.MASKED_FILL_MIN_ELEMENTS);
        }
        // Then the config matches what the generator wrote
        assertThat(sae.config().architecture().wireName()).isEqualTo(caseJson.get("architecture").asText());
        assertThat(sae.config().format().wireName()).isEqualTo(caseJson.get("format").asText());
        assertThat(dSae).isEqualTo(caseJson.get("d_sae_total").asInt());
        if (caseJson.has("hook")) { // v5 and v6 SAELens configs keep the hook in different places
            assertThat(sae.config().hook()).contains(caseJson.get("hook").asText());
        }
        // And codes, active sets and reconstruction match the reference
        // Codes are compared relative to the row's pre-activation magnitude: F32 rounding error scales with
        // the values the GEMM produced, and a token whose few active codes are tiny would otherwise make
        // a 1e-7 absolute error look like 1e-5.
        assertClose("features", dense.features(), wantFeatures, tokens, dSae, decision);
        assertClose("reconstruction", dense.reconstruction().orElseThrow(), wantRecon, tokens, dIn);
        int ties = 0;
        for (int t = 0; t < tokens; t++) {
            double scale = 0;
            for (int f = 0; f < dSae; f++) {
                scale = Math.max(scale, Math.abs(decision[t * dSae + f]));
            }
            for (int f = 0; f < dSae; f++) {
                int i = t * dSae + f;
                boolean tie = Math.abs(decision[i] - cut[i]) <= TIE * Math.max(1, scale);
                if (tie) {
                    ties++;
                    continue;
                }
                assertThat(dense.features()[i] != 0).as("token %d feature %d active (%s)", t, f, args).isEqualTo(wantFeatures[i] != 0);
                assertThat(codes.value(t, f)).as("sparse token %d feature %d", t, f).isEqualTo(dense.features()[i]);
            }
            assertThat(codes.activeCount(t)).isEqualTo(countNonZero(dense.features(), t * dSae, dSae));
        }
        assertThat(ties).as("near-ties exempted").isLessThan(tokens * dSae / 100 + 1);
        if (watchedCodes != null) {
            assertWatchedMatchReference(args, watchedCodes, watched, wantFeatures, decision, cut, dense.features(), tokens, dSae);
        }
        if (args.contains("--sparsity 1")) {
            float[] density = sae.baselineDensity().orElseThrow();
            float[] log10 = SafetensorsFile.open(out.resolve("sae/sparsity.safetensors")).tensor("sparsity").orElseThrow().toFloatArray();
            for (int f = 0; f < dSae; f++) {
                assertThat((double) density[f]).isCloseTo(Math.pow(10, log10[f]), org.assertj.core.data.Percentage.withPercentage(1e-4));
            }
        }
    }

    @Test
    void topKCapTruncatesAndCountsTokensWithMoreActiveFeatures() throws Exception {
        // Given a ReLU SAE whose tokens have more active features than the cap
        Path out = PythonSaeFixtures.generate(dir, SEED, "--format", "saelens", "--arch", "standard");
        Sae sae = SaeLoader.load(out.resolve("sae"));
        float[] x = SafetensorsFile.open(out.resolve("input.safetensors")).tensor("activations").orElseThrow().toFloatArray();
        int tokens = x.length / sae.config().dIn();

        // When encoded with max_active 2
        SparseCodes full;
        SparseCodes capped;
        try (DeviceSae device = engine.load(sae, sae.config().dSae()); DeviceSae small = engine.load(sae, 2)) {
            full = device.encode("s", x, tokens);
            capped = small.encode("s", x, tokens);
        }

        // Then every token keeps its two largest features and truncations are counted
        int expectedTruncated = 0;
        for (int t = 0; t < tokens; t++) {
            float[] row = full.denseRow(t);
            float[] sorted = row.clone();
            Arrays.sort(sorted);
            assertThat(capped.activeCount(t)).isEqualTo(Math.min(2, full.activeCount(t)));
            for (int j = 0; j < capped.activeCount(t); j++) {
                assertThat(capped.valueAt(t, j)).isEqualTo(sorted[sorted.length - 1 - j]);
            }
            if (full.activeCount(t) > 2) {
                expectedTruncated++;
            }
        }
        assertThat(capped.truncatedTokens()).isEqualTo(expectedTruncated).isPositive();
    }

    @Test
    void watchedFeaturesIgnoreMaxActiveAndFollowTheWatchedSet() throws Exception {
        // Given a ReLU SAE loaded with max_active 2, whose tokens have many more active features
        Path out = PythonSaeFixtures.generate(dir, SEED, "--format", "saelens", "--arch", "standard");
        Sae sae = SaeLoader.load(out.resolve("sae"));
        float[] x = SafetensorsFile.open(out.resolve("input.safetensors")).tensor("activations").orElseThrow().toFloatArray();
        int tokens = x.length / sae.config().dIn();
        int dSae = sae.config().dSae();
        try (DeviceSae device = engine.load(sae, dSae); DeviceSae capped = engine.load(sae, 2)) {
            SparseCodes full = device.encode("s", x, tokens);
            // When every feature is watched on the capped SAE, Then every active feature comes back, uncapped
            capped.watch(java.util.stream.IntStream.range(0, dSae).boxed().toList());
            SparseCodes all = capped.encodeWatched("s", x, tokens, false);
            assertThat(capped.encode("s", x, tokens).truncatedTokens()).isPositive();
            for (int t = 0; t < tokens; t++) {
                assertThat(all.activeCount(t)).isEqualTo(full.activeCount(t));
                for (int j = 0; j < full.activeCount(t); j++) {
                    assertThat((double) all.value(t, full.featureAt(t, j))).isCloseTo(full.valueAt(t, j),
                            org.assertj.core.data.Offset.offset(1e-5 * Math.abs(full.valueAt(t, 0))));
                }
            }
            // When the watched set narrows to three features and widens again, Then only those come back
            capped.watch(java.util.List.of(7, 3, 100));
            assertThat(capped.watched()).containsExactly(3, 7, 100);
            SparseCodes three = capped.encodeWatched("s", x, tokens, false);
            for (int t = 0; t < tokens; t++) {
                for (int j = 0; j < three.activeCount(t); j++) {
                    assertThat(three.featureAt(t, j)).isIn(3, 7, 100);
                }
                assertThat((double) three.value(t, 100)).isCloseTo(all.value(t, 100), org.assertj.core.data.Offset.offset(1e-5));
            }
            capped.watch(java.util.List.of(3, 7, 100, 5));
            assertThat((double) capped.encodeWatched("s", x, tokens, false).value(0, 5)).isCloseTo(all.value(0, 5),
                    org.assertj.core.data.Offset.offset(1e-5));
            // And out-of-range ids and non-finite input are refused
            assertThatThrownBy(() -> capped.watch(java.util.List.of(dSae))).isInstanceOf(IllegalArgumentException.class);
            float[] bad = x.clone();
            bad[3] = Float.NaN;
            assertThatThrownBy(() -> capped.encodeWatched("s", bad, tokens, false)).isInstanceOf(SaeInputException.class)
                    .hasMessageContaining("token 0");
        }
    }

    @Test
    void topKHasNoWatchedFeatureEncode() throws Exception {
        Path out = PythonSaeFixtures.generate(dir, SEED, "--format", "saelens", "--arch", "topk", "--k", "8");
        Sae sae = SaeLoader.load(out.resolve("sae"));
        try (DeviceSae device = engine.load(sae, 8)) {
            assertThat(device.encodesWatchedAlone()).isFalse();
            assertThatThrownBy(() -> device.watch(java.util.List.of(1))).isInstanceOf(IllegalStateException.class).hasMessageContaining("topk");
        }
    }

    @Test
    void wrongWidthAndNonFiniteValuesAreRejectedWithTheTokenIndex() throws Exception {
        // Given an SAE with d_in 64
        Path out = PythonSaeFixtures.generate(dir, SEED, "--format", "saelens", "--arch", "jumprelu");
        Sae sae = SaeLoader.load(out.resolve("sae"));
        try (DeviceSae device = engine.load(sae, 64)) {
            // When the width is wrong, Then the error names both widths
            assertThatThrownBy(() -> device.checkWidth(63)).isInstanceOf(SaeInputException.class)
                    .hasMessageContaining("d_in 63").hasMessageContaining("expects d_in 64");
            // When token 2 holds NaN / token 1 holds +Inf, Then the error names the token
            float[] x = new float[3 * 64];
            x[2 * 64 + 5] = Float.NaN;
            assertThatThrownBy(() -> device.encode("s", x, 3)).isInstanceOf(SaeInputException.class)
                    .hasMessageContaining("token 2").hasMessageContaining("NaN").hasMessageContaining("dimension 5")
                    .satisfies(e -> assertThat(((SaeInputException) e).token()).isEqualTo(2));
            float[] y = new float[2 * 64];
            y[64] = Float.POSITIVE_INFINITY;
            assertThatThrownBy(() -> device.encode("s", y, 2)).isInstanceOf(SaeInputException.class)
                    .hasMessageContaining("token 1").hasMessageContaining("Infinity");
        }
    }

    @Test
    void engineRefusesCallsFromAnotherThread() throws Exception {
        Path out = PythonSaeFixtures.generate(dir, SEED, "--format", "saelens", "--arch", "standard");
        Sae sae = SaeLoader.load(out.resolve("sae"));
        Throwable[] seen = new Throwable[1];
        Thread other = new Thread(() -> {
            try {
                engine.load(sae, 8);
            } catch (Throwable t) {
                seen[0] = t;
            }
        });
        other.start();
        other.join();
        assertThat(seen[0]).isInstanceOf(IllegalStateException.class).hasMessageContaining("confined");
    }

    /**
     * Some features of every part (base and residual of a composed SAE), drawn from the case's seed: a typical watched
     * set is a few dozen of thousands.
     */
    private static int[] watchedSample(long seed, int dSae, Sae sae) {
        java.util.Random r = new java.util.Random(seed);
        java.util.TreeSet<Integer> ids = new java.util.TreeSet<>();
        int split = sae instanceof ComposedSae c ? c.base().config().dSae() : dSae;
        while (ids.size() < 6) {
            ids.add(r.nextInt(split));
        }
        while (ids.size() < 12) {
            ids.add(split < dSae ? split + r.nextInt(dSae - split) : r.nextInt(dSae));
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    /**
     * The watched-feature encode against the float64 reference (same normwise tolerance and tie rule as the full
     * encode), against the full encode's dense codes, and with nothing but watched features in it.
     */
    private static void assertWatchedMatchReference(String args, SparseCodes got, int[] watched, float[] want, float[] decision, float[] cut,
            float[] full, int tokens, int dSae) {
        java.util.Set<Integer> set = Arrays.stream(watched).boxed().collect(java.util.stream.Collectors.toSet());
        int fired = 0;
        for (int t = 0; t < tokens; t++) {
            double scale = 0;
            for (int f = 0; f < dSae; f++) {
                scale = Math.max(scale, Math.max(Math.abs(decision[t * dSae + f]), Math.abs(want[t * dSae + f])));
            }
            for (int j = 0; j < got.activeCount(t); j++) {
                assertThat(set).as("token %d holds only watched features", t).contains(got.featureAt(t, j));
            }
            for (int f : watched) {
                int i = t * dSae + f;
                float v = got.value(t, f);
                if (Math.abs(decision[i] - cut[i]) <= TIE * Math.max(1, scale)) {
                    continue;
                }
                assertThat(v != 0).as("watched token %d feature %d active (%s)", t, f, args).isEqualTo(want[i] != 0);
                assertThat((double) Math.abs(v - want[i])).as("watched token %d feature %d vs float64 (%s)", t, f, args)
                        .isLessThanOrEqualTo(TOLERANCE * Math.max(scale, 1e-30));
                assertThat((double) Math.abs(v - full[i])).as("watched token %d feature %d vs the full encode (%s)", t, f, args)
                        .isLessThanOrEqualTo(TOLERANCE * Math.max(scale, 1e-30));
                fired += v != 0 ? 1 : 0;
            }
        }
        assertThat(fired).as("some watched feature fires (%s)", args).isPositive();
    }

    static void assertClose(String what, float[] got, float[] want, int rows, int cols) {
        assertClose(what, got, want, rows, cols, null);
    }

    /** Normwise: per row, max |got − want| ≤ 1e-5 · max(|want|, |scale|) over the row. */
    static void assertClose(String what, float[] got, float[] want, int rows, int cols, float[] scale) {
        assertThat(got).as(what + " length").hasSameSizeAs(want);
        for (int r = 0; r < rows; r++) {
            double maxRef = 0;
            double maxDiff = 0;
            for (int c = 0; c < cols; c++) {
                maxRef = Math.max(maxRef, Math.abs(want[r * cols + c]));
                if (scale != null) {
                    maxRef = Math.max(maxRef, Math.abs(scale[r * cols + c]));
                }
                maxDiff = Math.max(maxDiff, Math.abs(got[r * cols + c] - want[r * cols + c]));
            }
            double rel = maxRef == 0 ? maxDiff : maxDiff / maxRef;
            assertThat(rel).as("%s row %d: max |diff| %s vs max |ref| %s", what, r, maxDiff, maxRef).isLessThanOrEqualTo(TOLERANCE);
        }
    }

    private static int countNonZero(float[] a, int from, int n) {
        int c = 0;
        for (int i = from; i < from + n; i++) {
            if (a[i] != 0) {
                c++;
            }
        }
        return c;
    }
}
