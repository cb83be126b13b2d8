package io.saeguard.sidecar.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.saeguard.detectors.Chunk;
import io.saeguard.detectors.DecoderDirections;
import io.saeguard.detectors.DetectorDefinition;
import io.saeguard.detectors.DetectorDefinitions;
import io.saeguard.detectors.DetectorEngine;
import io.saeguard.detectors.StateLimits;
import io.saeguard.sae.engine.DeviceSpec;
import io.saeguard.sae.Sae;
import io.saeguard.sae.engine.DeviceSae;
import io.saeguard.sae.engine.EngineOptions;
import io.saeguard.sae.engine.SaeEngine;
import io.saeguard.sae.format.SaeLoader;
import io.saeguard.sae.lm.HiddenStateModel;
import io.saeguard.sidecar.testing.SaeguardJar;
import io.saeguard.topics.codes.SparseCodes;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code saeguard select --data} as a user runs it (the fat jar) on the demo's MiniLM and SAE: the detector it writes
 * loads as the sidecar loads it, and scoring the held-out texts the sidecar's way (every token, special tokens marked,
 * from position 0) gives the scores the report is computed from.
 */
class SelectTextIT {
    private static final String[] COMPUTING = {"The compiler crashed while building the kernel module.",
            "My laptop's CPU overheats when the database indexes run.", "Reboot the server after installing the driver update.",
            "The program leaks memory in its network socket handler.", "Install the operating system from a USB stick.",
            "The hard disk is full of log files from the web server.", "He wrote a script to back up the source code repository.",
            "The keyboard and mouse stopped responding after the firmware flash."};
    private static final String[] KITCHEN = {"Simmer the tomato sauce with garlic for twenty minutes.",
            "She baked a loaf of sourdough bread with rye flour.", "Chop the onions finely before frying them in butter.",
            "The soup needs more salt and a little black pepper.", "Whisk the eggs with sugar until the mixture is pale.",
            "Roast the carrots and potatoes in olive oil.", "He grilled the fish and served it with lemon.",
            "Knead the dough and let it rest under a towel."};

    @TempDir
    Path dir;

    @ParameterizedTest(name = "--rule {0}")
    @ValueSource(strings = {"probe", "raw-probe"})
    void aWrittenProbeLoadsAndScoresTheHeldOutTextsAsTheReportSays(String rule) throws Exception {
        // Given the demo SAE and 64 labelled texts (computing positive, cooking negative), varied by a seeded suffix
        Path sae = Files.createDirectories(dir.resolve("sae"));
        for (String f : List.of("cfg.json", "sae_weights.safetensors", "sparsity.safetensors")) {
            try (InputStream in = DemoCommand.class.getResourceAsStream(DemoCommand.RESOURCES + f)) {
                Files.copy(in, sae.resolve(f));
            }
        }
        Random rnd = new Random(5);
        String[] tails = {"", " Again.", " Today, as usual.", " It took an hour.", " Nobody noticed.", " Then it was done.", " Twice.",
                " At noon."};
        StringBuilder jsonl = new StringBuilder();
        ObjectMapper json = new ObjectMapper();
        for (int i = 0; i < 64; i++) {
            boolean label = i % 2 == 0;
            String[] pool = label ? COMPUTING : KITCHEN;
            String text = pool[rnd.nextInt(pool.length)] + tails[(i / 2) % tails.length];
            jsonl.append(json.writeValueAsString(java.util.Map.of("text", text, "label", label, "source", "test"))).append('\n');
        }
        Path data = dir.resolve("labelled.jsonl");
        Files.writeString(data, jsonl.toString());

        // When select builds the rule from the text
        Path out = dir.resolve("topic.yaml");
        Path scores = dir.resolve("scores.jsonl");
        Path report = dir.resolve("report.json");
        SaeguardJar.Completed run = SaeguardJar.run(dir, dir.resolve("select.log"), "select", "--sae", sae.toString(), "--sae-id", "demo-sae",
                "--id", "topic", "--data", data.toString(), "--rule", rule, "--top", "8", "--target-fpr", "0.05", "--out", out.toString(),
                "--json", report.toString(), "--scores", scores.toString(), "--threads", "1");
        assertThat(run.exitCode()).as(run.output()).isZero();

        // Then the detector loads as the sidecar loads it, with its weights file beside it
        DetectorDefinition d = DetectorDefinitions.load(out);
        assertThat(d.rule().kind()).isEqualTo(rule);
        assertThat(dir.resolve("topic." + rule + ".safetensors")).exists();
        // and scoring each held-out text the sidecar's way reproduces the scores select reported, within float error
        List<JsonNode> lines = new ArrayList<>();
        for (String l : Files.readAllLines(scores)) {
            lines.add(json.readTree(l));
        }
        JsonNode rep = json.readTree(report.toFile()).get("folds").get(0).get("rules").get(rule);
        assertThat(lines).hasSize(rep.get("n_positive").asInt() + rep.get("n_negative").asInt());
        EngineOptions options = new EngineOptions(DeviceSpec.CPU, EngineOptions.defaultCacheDir(), 1, 1, false); // DJL is configured once per JVM: every IT uses 1 thread
        Sae loaded = SaeLoader.load(sae);
        DetectorEngine detectors = DetectorEngine.create(List.of(d), DecoderDirections.none(), new StateLimits(Duration.ofDays(1), 64));
        int flaggedPositives = 0;
        int positives = 0;
        try (SaeEngine engine = SaeEngine.start(options); DeviceSae device = engine.load(loaded, 256);
                HiddenStateModel lm = HiddenStateModel.open(HiddenStateModel.BUILTIN_MINILM, null, 256, options.cacheDir())) {
            for (int i = 0; i < lines.size(); i++) {
                JsonNode line = lines.get(i);
                HiddenStateModel.Result r = lm.run(List.of(line.get("text").asText())).get(0);
                SparseCodes codes = LabelledTexts.encodeCodes(device, "demo-sae", r.rows(), r.tokens(), r.dModel());
                float[] norms = new float[r.tokens()];
                java.util.Arrays.fill(norms, 1f);
                Chunk chunk = new Chunk("t" + i, "demo-sae", 0, codes, Optional.of(r.rows()), r.dModel(), norms, Optional.of(r.intIds()),
                        Optional.of(r.special()), true);
                var verdict = detectors.evaluate(chunk, 0).verdicts().get(0);
                assertThat(verdict.score()).as("held-out text %d", i).isCloseTo(line.get("score").asDouble(), within(1e-4));
                if (line.get("label").asBoolean()) {
                    positives++;
                    flaggedPositives += verdict.action() != io.saeguard.topics.events.Action.ALLOW ? 1 : 0;
                }
            }
        }
        // and the recall at the written policy is the report's
        assertThat(flaggedPositives / (double) positives).isCloseTo(rep.get("recall").asDouble(), within(1e-9));
        assertThat(rep.get("auroc").asDouble()).isGreaterThan(0.9);
    }

    @org.junit.jupiter.api.Test
    void anL2ListIsChosenOnGroupFoldsOfTheTrainingFileOnlyAndTheReportShowsTheGrid() throws Exception {
        // Given the demo SAE, 48 training texts in two groups and 16 test texts
        Path sae = Files.createDirectories(dir.resolve("sae"));
        for (String f : List.of("cfg.json", "sae_weights.safetensors", "sparsity.safetensors")) {
            try (InputStream in = DemoCommand.class.getResourceAsStream(DemoCommand.RESOURCES + f)) {
                Files.copy(in, sae.resolve(f));
            }
        }
        ObjectMapper json = new ObjectMapper();
        String[] tails = {"", " Again.", " Today, as usual.", " It took an hour.", " Nobody noticed.", " Then it was done."};
        StringBuilder train = new StringBuilder();
        StringBuilder test = new StringBuilder();
        for (int i = 0; i < 64; i++) {
            boolean label = i % 2 == 0;
            String[] pool = label ? COMPUTING : KITCHEN;
            String text = pool[(i / 2) % pool.length] + tails[(i / 16) % tails.length];
            String group = i < 48 ? (i % 4 < 2 ? "first" : "second") : "third";
            (i < 48 ? train : test).append(json.writeValueAsString(java.util.Map.of("text", text, "label", label, "group", group))).append('\n');
        }
        Path trainFile = Files.writeString(dir.resolve("train.jsonl"), train.toString());
        Path testFile = Files.writeString(dir.resolve("test.jsonl"), test.toString());

        // When select chooses each probe's L2 strength from a list, on leave-one-group-out folds
        Path report = dir.resolve("report.json");
        Path md = dir.resolve("report.md");
        SaeguardJar.Completed run = SaeguardJar.run(dir, dir.resolve("select.log"), "select", "--sae", sae.toString(), "--sae-id", "demo-sae",
                "--id", "topic", "--data", trainFile.toString(), "--test-data", testFile.toString(), "--rule", "probe", "--top", "8",
                "--l2", "0.001,0.1,10", "--folds-by", "group", "--out", dir.resolve("topic.yaml").toString(), "--json", report.toString(),
                "--report", md.toString(), "--threads", "1");
        assertThat(run.exitCode()).as(run.output()).isZero();

        // Then each probe kind names its chosen lambda, the best mean over the two training groups' folds
        JsonNode l2 = json.readTree(report.toFile()).get("l2");
        for (String kind : List.of("probe", "raw-probe")) {
            JsonNode k = l2.get(kind);
            assertThat(k.get("grid")).hasSize(3);
            double best = -1;
            double chosenMean = -1;
            for (JsonNode g : k.get("grid")) {
                assertThat(g.get("fold_auroc")).as(kind).hasSize(2);
                best = Math.max(best, g.get("mean_auroc").asDouble());
                if (g.get("lambda").asDouble() == k.get("chosen").asDouble()) {
                    chosenMean = g.get("mean_auroc").asDouble();
                }
            }
            assertThat(chosenMean).as(kind).isEqualTo(best);
            assertThat(k.get("folds").asText()).contains("training part only");
        }
        // and the written probe was fitted with it, as the Markdown report says
        assertThat(Files.readString(md)).contains("## L2 strength, chosen on training folds", "leave-one-group-out folds of the training part only",
                "lambda " + l2.get("probe").get("chosen").asDouble() + ", standardised inputs");
    }
}
