package io.saeguard.sidecar.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.saeguard.detectors.DecoderDirections;
import io.saeguard.detectors.DetectorDefinition;
import io.saeguard.detectors.DetectorDefinitions;
import io.saeguard.detectors.DetectorEngine;
import io.saeguard.detectors.StateLimits;
import io.saeguard.sae.Sae;
import io.saeguard.sae.compare.ActivationCorrelation;
import io.saeguard.sae.compare.DecoderMatching;
import io.saeguard.sae.compare.FeatureMatch;
import io.saeguard.sae.compare.SparseRows;
import io.saeguard.sae.engine.DeviceSae;
import io.saeguard.sae.engine.SaeEngine;
import io.saeguard.sae.format.SaeLoader;
import io.saeguard.sae.train.ReconstructionQuality;
import io.saeguard.sae.train.ReconstructionStats;
import io.saeguard.sidecar.config.ConfigLoader;
import io.saeguard.sidecar.config.SidecarConfig;
import io.saeguard.topics.safetensors.SafetensorsFile;
import io.saeguard.topics.safetensors.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code saeguard compare-saes}: how far SAE B can stand in for SAE A (issue 20, item 3). Both encode the same
 * activations; features are matched by decoder cosine ({@link DecoderMatching}) and by activation correlation
 * ({@link ActivationCorrelation}, whose mean best correlation is PW-MCC); each SAE's FVU is measured on the input; with
 * {@code --config}, every detector reading features of A gets, per feature, the B feature that best stands in for it: a
 * migration table for an SAE upgrade.
 */
@Command(name = "compare-saes", mixinStandardHelpOptions = true, description = {"Compares two SAEs on the same activations: feature matching, FVU, and a detector migration table.",
        "Input: safetensors with 'activations' [n, d_in] (F32, F16 or BF16); the first --max-tokens rows are encoded by both SAEs.",
        "Decoder cosine: for each feature of A, the B feature whose unit decoder row is closest (mean max-cosine, counts above 0.7 "
                + "and 0.9). Activation correlation: for each live feature of A, the B feature whose activations correlate most "
                + "(Pearson over the tokens); PW-MCC is the mean of those best correlations. With --config, each detector of A's SAE "
                + "lists, per feature it reads, the best B feature by correlation, with its decoder cosine."})
final class CompareSaesCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    @Parameters(index = "0", paramLabel = "A", description = "the SAE in use (directory or Gemma Scope .npz)")
    Path pathA;

    @Parameters(index = "1", paramLabel = "B", description = "the candidate SAE")
    Path pathB;

    @Option(names = "--input", required = true, description = "safetensors with 'activations' [n, d_in]")
    Path input;

    @Option(names = "--config", description = "a sidecar config whose detectors read A's features: adds the migration table")
    Path config;

    @Option(names = "--sae-id", description = "which SAE of --config is A (default: the entry whose path is A's, or the only one)")
    String saeId;

    @Option(names = "--max-tokens", defaultValue = "4096", description = "rows of the input used (default ${DEFAULT-VALUE})")
    int maxTokens;

    @Option(names = "--out", description = "JSON report to write (with every feature's matches)")
    Path out;

    @Option(names = "--batch", defaultValue = "256", description = "tokens per engine call (default ${DEFAULT-VALUE})")
    int batch;

    @Mixin
    EngineMixin engineOptions;

    /** One SAE's side: its codes of the input, its decoder rows and its reconstruction quality (FVU, L0, dead latents). */
    private record Side(Path path, Sae sae, SparseRows codes, float[] decoder, ReconstructionQuality quality) {
        int dSae() {
            return sae.config().dSae();
        }
    }

    /** A feature of A and the B feature that stands in for it. */
    private record StandIn(int a, int b, double correlation, double cosine) {
    }

    @Override
    public Integer call() throws Exception {
        if (maxTokens < 2) {
            throw new IllegalArgumentException("--max-tokens must be at least 2 (a correlation needs two tokens), found " + maxTokens);
        }
        if (batch < 1) {
            throw new IllegalArgumentException("--batch must be at least 1, found " + batch);
        }
        Sae saeA = SaeLoader.load(pathA);
        Sae saeB = SaeLoader.load(pathB);
        int dIn = saeA.config().dIn();
        if (saeB.config().dIn() != dIn) {
            throw new IllegalArgumentException("A (" + pathA + ") reads d_in " + dIn + " but B (" + pathB + ") reads d_in " + saeB.config().dIn()
                    + "; compare SAEs of the same hook of the same model");
        }
        float[] x = readInput(dIn);
        int n = x.length / dIn;
        Map<String, Set<Integer>> detectorFeatures = config == null ? Map.of() : detectorFeatures(saeA);
        Side a;
        Side b;
        long t0 = System.nanoTime();
        try (SaeEngine engine = SaeEngine.start(engineOptions.options())) {
            a = encode(engine, pathA, saeA, x, n, dIn);
            b = encode(engine, pathB, saeB, x, n, dIn);
        }
        long t1 = System.nanoTime();
        FeatureMatch byCosine = DecoderMatching.best(a.decoder(), a.dSae(), b.decoder(), b.dSae(), dIn);
        long t2 = System.nanoTime();
        FeatureMatch byCorrelation = ActivationCorrelation.best(a.codes(), b.codes());
        long t3 = System.nanoTime();
        System.err.printf(Locale.ROOT, "compare-saes: encoded %d tokens with both in %.1f s, decoder cosine in %.1f s, correlation in %.1f s%n", n,
                (t1 - t0) / 1e9, (t2 - t1) / 1e9, (t3 - t2) / 1e9);

        Map<String, List<StandIn>> migration = new LinkedHashMap<>();
        detectorFeatures.forEach((id, features) -> {
            List<StandIn> rows = new ArrayList<>();
            for (int f : features) {
                int best = byCorrelation.best()[f];
                rows.add(new StandIn(f, best, byCorrelation.score()[f], best < 0 ? Double.NaN : DecoderMatching.cosine(a.decoder(), f, b.decoder(), best, dIn)));
            }
            migration.put(id, rows);
        });
        printTable(a, b, n, byCosine, byCorrelation, migration);
        if (out != null) {
            Files.writeString(out, json(a, b, n, byCosine, byCorrelation, migration));
            System.out.println("report: " + out);
        }
        return 0;
    }

    private float[] readInput(int dIn) throws Exception {
        SafetensorsFile in = SafetensorsFile.open(input);
        Tensor acts = in.tensor("activations").orElseThrow(() -> new IllegalArgumentException(input + ": no tensor 'activations' (found: "
                + String.join(", ", in.names()) + ")"));
        if (acts.rank() != 2 || acts.dim(1) != dIn) {
            throw new IllegalArgumentException(input + ": 'activations' must be [n, " + dIn + "] (the SAEs' d_in), found " + Arrays.toString(acts.shape()));
        }
        int n = (int) Math.min(acts.dim(0), maxTokens);
        if (n < 2) {
            throw new IllegalArgumentException(input + ": 'activations' has " + acts.dim(0) + " rows; a correlation needs at least 2");
        }
        float[] x = new float[n * dIn];
        acts.copyFloats(0, x, 0, n * dIn);
        return x;
    }

    private Side encode(SaeEngine engine, Path path, Sae sae, float[] x, int n, int dIn) throws Exception {
        int dSae = sae.config().dSae();
        SparseRows.Builder codes = new SparseRows.Builder(dSae);
        ReconstructionStats stats = new ReconstructionStats(dIn, dSae);
        try (DeviceSae device = engine.load(sae, 256)) {
            float[] chunk = new float[Math.min(batch, n) * dIn];
            for (int start = 0; start < n; start += batch) {
                int m = Math.min(batch, n - start);
                System.arraycopy(x, start * dIn, chunk, 0, m * dIn);
                DeviceSae.Dense d = device.encodeDense(chunk, m, true);
                codes.addDense(d.features(), m);
                stats.add(chunk, d.reconstruction().orElseThrow(), d.features(), m);
            }
        }
        float[] decoder = new float[dSae * dIn];
        float[] row = new float[dIn];
        for (int f = 0; f < dSae; f++) {
            sae.decoderRow(f, row);
            System.arraycopy(row, 0, decoder, f * dIn, dIn);
        }
        return new Side(path, sae, codes.build(), decoder, stats.quality());
    }

    /** Per detector of the config that reads A's SAE, the features it reads (rule features, DSG's, a probe's non-zero weights). */
    private Map<String, Set<Integer>> detectorFeatures(Sae saeA) throws Exception {
        SidecarConfig cfg = ConfigLoader.load(Optional.of(config));
        String id = saeId != null ? saeId : configEntryOfA(cfg);
        if (cfg.saes().stream().noneMatch(e -> e.id().equals(id))) {
            throw new IllegalArgumentException("--sae-id " + id + ": " + config + " has no SAE with that id (saes: "
                    + String.join(", ", cfg.saes().stream().map(SidecarConfig.SaeEntry::id).toList()) + ")");
        }
        DecoderDirections directions = new DecoderDirections() {
            @Override
            public int dIn(String sae) {
                return saeA.config().dIn();
            }

            @Override
            public void direction(String sae, int feature, float[] dst) {
                saeA.decoderRow(feature, dst);
            }
        };
        Map<String, Set<Integer>> out = new LinkedHashMap<>();
        for (DetectorDefinition d : DetectorDefinitions.loadAll(cfg.detectors())) {
            if (!d.sae().equals(id)) {
                continue;
            }
            Set<Integer> features = DetectorEngine.create(List.of(d), directions, new StateLimits(Duration.ofMinutes(10), 1)).watchedFeatures()
                    .getOrDefault(id, Set.of());
            for (int f : features) {
                if (f >= saeA.config().dSae()) {
                    throw new IllegalArgumentException("detector '" + d.id() + "' reads feature " + f + " but A (" + pathA + ") has d_sae "
                            + saeA.config().dSae() + "; is A the SAE of " + config + "'s '" + id + "'? (--sae-id)");
                }
            }
            out.put(d.id(), features);
        }
        return out;
    }

    private String configEntryOfA(SidecarConfig cfg) throws IOException {
        Path real = pathA.toRealPath();
        for (SidecarConfig.SaeEntry e : cfg.saes()) {
            if (Files.exists(e.path()) && e.path().toRealPath().equals(real)) {
                return e.id();
            }
        }
        if (cfg.saes().size() == 1) {
            return cfg.saes().get(0).id();
        }
        throw new IllegalArgumentException(config + ": no SAE entry has A's path (" + pathA + "); name A's entry with --sae-id (saes: "
                + String.join(", ", cfg.saes().stream().map(SidecarConfig.SaeEntry::id).toList()) + ")");
    }

    private static void printTable(Side a, Side b, int n, FeatureMatch byCosine, FeatureMatch byCorrelation, Map<String, List<StandIn>> migration) {
        System.out.printf(Locale.ROOT, "%-3s %8s %10s %8s %8s  %s%n", "", "d_sae", "FVU", "L0", "dead", "SAE");
        for (Side s : List.of(a, b)) {
            System.out.printf(Locale.ROOT, "%-3s %8d %10.4f %8.1f %8d  %s%n", s == a ? "A" : "B", s.dSae(), s.quality().fvu(), s.quality().l0(),
                    s.quality().deadLatents(), s.path());
        }
        System.out.printf(Locale.ROOT, "decoder cosine (A -> best B): mean max-cosine %.4f, %d of %d above 0.7, %d above 0.9%n", byCosine.mean(),
                byCosine.atLeast(0.7), a.dSae(), byCosine.atLeast(0.9));
        System.out.printf(Locale.ROOT, "activation correlation on %d tokens: PW-MCC %.4f over %d live A features (%d dead on the input), "
                + "%d above 0.7, %d above 0.9%n", n, byCorrelation.mean(), byCorrelation.matched(), a.dSae() - byCorrelation.matched(),
                byCorrelation.atLeast(0.7), byCorrelation.atLeast(0.9));
        if (!migration.isEmpty()) {
            System.out.printf(Locale.ROOT, "%n%-24s %10s %10s %12s %10s%n", "detector", "A feature", "B feature", "correlation", "cosine");
            migration.forEach((id, rows) -> {
                if (rows.isEmpty()) {
                    System.out.printf(Locale.ROOT, "%-24s %10s%n", id, "(reads no feature)");
                }
                for (StandIn s : rows) {
                    System.out.printf(Locale.ROOT, "%-24s %10d %10s %12s %10s%n", id, s.a(), s.b() < 0 ? "-" : Integer.toString(s.b()),
                            s.b() < 0 ? "dead in A" : String.format(Locale.ROOT, "%.4f", s.correlation()),
                            s.b() < 0 ? "-" : String.format(Locale.ROOT, "%.4f", s.cosine()));
                }
            });
        }
    }

    private static String json(Side a, Side b, int n, FeatureMatch byCosine, FeatureMatch byCorrelation, Map<String, List<StandIn>> migration)
            throws IOException {
        ObjectNode root = JSON.createObjectNode();
        root.put("tokens", n);
        side(root.putObject("a"), a);
        side(root.putObject("b"), b);
        ObjectNode cos = root.putObject("decoder_cosine");
        putNumber(cos, "mean_max_cosine", byCosine.mean());
        cos.put("above_0_7", byCosine.atLeast(0.7));
        cos.put("above_0_9", byCosine.atLeast(0.9));
        ObjectNode corr = root.putObject("activation_correlation");
        putNumber(corr, "pw_mcc", byCorrelation.mean());
        corr.put("live_a_features", byCorrelation.matched());
        corr.put("above_0_7", byCorrelation.atLeast(0.7));
        corr.put("above_0_9", byCorrelation.atLeast(0.9));
        ObjectNode ds = root.putObject("detectors");
        migration.forEach((id, rows) -> {
            ArrayNode arr = ds.putArray(id);
            for (StandIn s : rows) {
                ObjectNode o = arr.addObject().put("a_feature", s.a());
                if (s.b() >= 0) {
                    o.put("b_feature", s.b());
                    putNumber(o, "correlation", s.correlation());
                    putNumber(o, "cosine", s.cosine());
                } else {
                    o.putNull("b_feature");
                }
            }
        });
        ArrayNode features = root.putArray("features");
        for (int i = 0; i < a.dSae(); i++) {
            ObjectNode o = features.addObject().put("a", i);
            if (byCosine.best()[i] >= 0) {
                o.put("b_by_cosine", byCosine.best()[i]);
                putNumber(o, "cosine", byCosine.score()[i]);
            }
            if (byCorrelation.best()[i] >= 0) {
                o.put("b_by_correlation", byCorrelation.best()[i]);
                putNumber(o, "correlation", byCorrelation.score()[i]);
            }
        }
        return JSON.writeValueAsString(root) + "\n";
    }

    private static void side(ObjectNode o, Side s) {
        o.put("path", s.path().toString());
        o.put("architecture", s.sae().config().architecture().wireName());
        o.put("d_sae", s.dSae());
        putNumber(o, "fvu", s.quality().fvu());
        putNumber(o, "l0", s.quality().l0());
        o.put("dead_on_input", s.quality().deadLatents());
    }

    private static void putNumber(ObjectNode o, String key, double v) {
        if (Double.isFinite(v)) {
            o.put(key, v);
        } else {
            o.putNull(key);
        }
    }
}
