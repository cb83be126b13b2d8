package io.saeguard.sidecar.cli;

import io.saeguard.detectors.DetectorDefinitions;
import io.saeguard.detectors.select.ExampleSet;
import io.saeguard.detectors.select.FeatureSelection;
import io.saeguard.detectors.select.MarkdownReport;
import io.saeguard.detectors.select.SelectionOptions;
import io.saeguard.detectors.select.SelectionResult;
import io.saeguard.sae.Sae;
import io.saeguard.sae.engine.DeviceSae;
import io.saeguard.sae.engine.SaeEngine;
import io.saeguard.sae.format.SaeLoader;
import io.saeguard.topics.DecodeException;
import io.saeguard.topics.codes.SparseCodes;
import io.saeguard.topics.safetensors.SafetensorsFile;
import io.saeguard.topics.safetensors.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import io.saeguard.sae.lm.HiddenStateModel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code saeguard select}: turns labelled example activations into a detector (docs/algorithms.md#feature-selection). */
@Command(name = "select", mixinStandardHelpOptions = true,
        description = {"Selects SAE features that tell positive from negative examples and writes a detector YAML.",
                "Inputs: safetensors with 'activations' [tokens, d_in] and 'request' I32 [tokens], each token's example.",
                "'saeguard activations' writes both. Each set needs at least 2 examples: one to select on, one to evaluate.",
                "--rule dsg (the default) needs 'request' in --positive and --negative: its score rho is a rate per request.",
                "--rule features also takes files without 'request', and then every token is an example.",
                "--random (random-token activations for LangFIR filtering) needs no 'request'.",
                "The report holds per-feature statistics and held-out AUROC/precision/recall against a raw-activation probe.",
                "From labelled text instead: --data LABELLED.jsonl (lines {\"text\": ..., \"label\": true|false}) runs the texts",
                "through the prompt model (--model, the built-in MiniLM by default) and the SAE; every rule (probe, raw-probe, dsg,",
                "features) is then fitted on a seeded split (--holdout, or --folds K, or --test-data), its band calibrated to",
                "--target-fpr on calibration negatives, and compared on the held-out texts with a string-match baseline",
                "(--keywords FILE, or --keywords xstest-refusal). --rule picks the one written."})
final class SelectCommand implements Callable<Integer> {
    @Option(names = "--sae", required = true, description = "SAE directory (or Gemma Scope .npz file)")
    Path saePath;

    @Option(names = "--sae-id", description = "the SAE id the detector names (as in the sidecar config; default: the SAE folder name)")
    String saeId;

    @Option(names = "--id", defaultValue = "selected", description = "detector id (default ${DEFAULT-VALUE})")
    String id;

    @Option(names = "--positive", description = "activations of the concept's examples ('request' needed by --rule dsg)")
    Path positive;

    @Option(names = "--negative", description = "activations of benign examples ('request' needed by --rule dsg)")
    Path negative;

    @Option(names = "--data", description = "labelled text, JSONL {\"text\", \"label\": true|false} per line (repeatable; instead of --positive/--negative)")
    List<Path> data = new ArrayList<>();

    @Option(names = "--test-data", description = "labelled text held out as a whole (e.g. another model's completions) instead of a random split (repeatable)")
    List<Path> testData = new ArrayList<>();

    @Option(names = "--holdout", defaultValue = "0.25", description = "fraction of each class held out, seeded (default ${DEFAULT-VALUE})")
    double holdout;

    @Option(names = "--folds", description = "K-fold instead of one held-out split: the report gives every fold and the mean; fold 1's detector is written")
    Integer folds;

    @Option(names = "--folds-by", defaultValue = "random",
            description = "random (--folds K seeded folds) | group: leave-one-group-out folds over the JSONL 'group' field (--data), so "
                    + "choices are made across groups (default ${DEFAULT-VALUE})")
    String foldsBy;

    @Option(names = "--l2", split = ",", paramLabel = "LAMBDA",
            description = "L2 strength of the probes on standardised inputs; a list (0.001,0.01,0.1) is a grid: each of probe and "
                    + "raw-probe takes the value with the best mean AUROC on training folds (--folds K or --folds-by group; with "
                    + "--test-data or --holdout, folds of the training part only, 5 unless --folds says) (default 0.01)")
    List<Double> l2;

    @Option(names = "--calibration", defaultValue = "0.25",
            description = "fraction of the non-held-out negatives set aside to calibrate the band (default ${DEFAULT-VALUE})")
    double calibration;

    @Option(names = "--seed", defaultValue = "42", description = "seed of the split (default ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--target-fpr", defaultValue = "0.01", description = "FPR the band is calibrated to on the calibration negatives (default ${DEFAULT-VALUE})")
    double targetFpr;

    @Option(names = "--keywords", description = "string-match baseline: a file of phrases (one a line, matched anywhere), or 'xstest-refusal' "
            + "(the XSTest authors' refusal prefixes)")
    String keywords;

    @Option(names = "--json", description = "JSON report to write (--data or a probe rule)")
    Path json;

    @Option(names = "--scores", description = "JSONL of the held-out examples' scores under the written detector (--data)")
    Path scores;

    @Option(names = "--model", defaultValue = HiddenStateModel.BUILTIN_MINILM,
            description = "--data: builtin:all-minilm-l6-v2, a .onnx or a TorchScript .pt file (default ${DEFAULT-VALUE})")
    String model;

    @Option(names = "--tokenizer", description = "--data: the model's tokenizer.json (not needed for the built-in model)")
    Path tokenizer;

    @Option(names = "--max-tokens", defaultValue = "256", description = "--data: tokens kept per text, as the sidecar's prompts.max_tokens (default ${DEFAULT-VALUE})")
    int maxTokens;

    @Option(names = "--random", description = "activations of random tokens (LangFIR: drop features that fire on them)")
    Path random;

    @Option(names = "--method", defaultValue = "dsg", description = "dsg | mean-diff (default ${DEFAULT-VALUE})")
    String method;

    @Option(names = "--rule", defaultValue = "dsg", description = "the written detector's rule: dsg | features | probe | raw-probe (default ${DEFAULT-VALUE})")
    String rule;

    @Option(names = "--top", defaultValue = "20", description = "features to keep (default ${DEFAULT-VALUE})")
    int top;

    @Option(names = "--random-limit", defaultValue = "0.01",
            description = "LangFIR: drop features firing on more than this fraction of the random tokens (default ${DEFAULT-VALUE})")
    double randomLimit;

    @Option(names = "--window", description = "dsg: the windowed variant: rho over the last W counted tokens, the request scored by its densest window so far")
    Integer window;

    @Option(names = "--max-active", defaultValue = "256", description = "most active features kept per token (default ${DEFAULT-VALUE})")
    int maxActive;

    @Option(names = "--out", required = true, description = "detector YAML to write")
    Path out;

    @Option(names = "--report", description = "markdown report to write")
    Path report;

    @Mixin
    EngineMixin engineOptions;

    @Override
    public Integer call() throws Exception {
        SelectionOptions.RuleChoice ruleChoice = switch (rule.toLowerCase(Locale.ROOT)) {
            case "dsg" -> SelectionOptions.RuleChoice.DSG;
            case "features" -> SelectionOptions.RuleChoice.FEATURES;
            case "probe" -> SelectionOptions.RuleChoice.PROBE;
            case "raw-probe" -> SelectionOptions.RuleChoice.RAW_PROBE;
            default -> throw new IllegalArgumentException("--rule must be dsg, features, probe or raw-probe, found '" + rule + "'");
        };
        if (l2 == null || l2.isEmpty()) {
            l2 = List.of(0.01);
        }
        if (!foldsBy.equals("random") && !foldsBy.equals("group")) {
            throw new IllegalArgumentException("--folds-by must be random or group, found '" + foldsBy + "'");
        }
        boolean text = !data.isEmpty();
        if (text == (positive != null || negative != null)) {
            throw new IllegalArgumentException("give either --data (labelled text) or --positive and --negative (activation files)");
        }
        if (!text && (positive == null || negative == null)) {
            throw new IllegalArgumentException("--positive and --negative go together");
        }
        if (text || ruleChoice == SelectionOptions.RuleChoice.PROBE || ruleChoice == SelectionOptions.RuleChoice.RAW_PROBE) {
            return new TextSelectionRun(this, ruleChoice).call();
        }
        if (l2.size() > 1) {
            throw new IllegalArgumentException("--l2 " + l2 + ": a list is chosen on folds for the probe rules; with activation files "
                    + "and --rule " + rule + " give one value");
        }
        if (ruleChoice == SelectionOptions.RuleChoice.DSG) {
            requireExamples("--positive", positive);
            requireExamples("--negative", negative);
        }
        Sae sae = SaeLoader.load(saePath);
        String sid = saeIdOrDefault();
        SelectionOptions options = options(sid, ruleChoice);
        SelectionResult result;
        try (SaeEngine engine = SaeEngine.start(engineOptions.options()); DeviceSae device = engine.load(sae, maxActive)) {
            ExampleSet pos = examples(device, sid, positive);
            ExampleSet neg = examples(device, sid, negative);
            Optional<ExampleSet> rnd = random == null ? Optional.empty() : Optional.of(examples(device, sid, random));
            result = FeatureSelection.select(pos, neg, rnd, options);
        }
        Files.writeString(out, DetectorDefinitions.toYaml(result.detector()));
        String md = MarkdownReport.render(result.report());
        if (report != null) {
            Files.writeString(report, md);
        }
        System.err.println("wrote " + out + (report != null ? " and " + report : ""));
        System.out.println(md);
        return 0;
    }

    String saeIdOrDefault() {
        return saeId != null ? saeId : Optional.ofNullable(saePath.toAbsolutePath().getFileName()).map(Path::toString).orElse("sae");
    }

    SelectionOptions options(String sid, SelectionOptions.RuleChoice ruleChoice) {
        SelectionOptions options = SelectionOptions.defaults(id, sid)
                .withMethod(switch (method.toLowerCase(Locale.ROOT)) {
                    case "dsg" -> SelectionOptions.Method.DSG;
                    case "mean-diff" -> SelectionOptions.Method.MEAN_DIFF;
                    default -> throw new IllegalArgumentException("--method must be dsg or mean-diff, found '" + method + "'");
                })
                .withRule(ruleChoice)
                .withTopN(top)
                .withRandomRateLimit(randomLimit)
                .withHoldout(holdout, seed)
                .withL2(l2.get(0));
        return window != null ? options.withWindow(window) : options;
    }

    /** The dsg rule's ρ is the fraction of a request's tokens where a selected feature fires (DSG, arXiv 2504.08192): without example ids there is no request. */
    static void requireExamples(String option, Path file) throws IOException, DecodeException {
        SafetensorsFile f = SafetensorsFile.open(file);
        if (f.tensor("request").isEmpty()) {
            throw new IllegalArgumentException(option + " " + file + ": no tensor 'request' (found: " + String.join(", ", f.names())
                    + "); the dsg rule (--rule dsg, the default) scores rho, a rate per request, so it needs 'request' I32 [tokens] "
                    + "naming each token's example: add it ('saeguard activations' writes it), or pass --rule features, "
                    + "which treats every token as an example");
        }
    }

    ExampleSet examples(DeviceSae device, String sid, Path file) throws Exception {
        SafetensorsFile f = SafetensorsFile.open(file);
        Tensor acts = f.tensor("activations").orElseThrow(() -> new IllegalArgumentException(file + ": no tensor 'activations' (found: "
                + String.join(", ", f.names()) + ")"));
        if (acts.rank() != 2) {
            throw new IllegalArgumentException(file + ": 'activations' must be [tokens, d_in], found " + Arrays.toString(acts.shape()));
        }
        int n = Math.toIntExact(acts.dim(0));
        int dIn = Math.toIntExact(acts.dim(1));
        device.checkWidth(dIn);
        float[] x = acts.toFloatArray();
        SparseCodes codes = LabelledTexts.encodeCodes(device, sid, x, n, dIn);
        Optional<Tensor> request = f.tensor("request");
        ExampleSet set = request.isPresent() ? ExampleSet.ofExamples(codes, request.get().toIntArray()) : ExampleSet.ofTokens(codes);
        return set.withActivations(x, dIn);
    }
}
