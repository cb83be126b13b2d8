package io.saeguard.sidecar.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.saeguard.detectors.DetectorDefinition;
import io.saeguard.detectors.DetectorDefinitions;
import io.saeguard.detectors.rules.ProbeWeights;
import io.saeguard.detectors.select.ExampleSet;
import io.saeguard.detectors.select.L2Grid;
import io.saeguard.detectors.select.PooledProbe;
import io.saeguard.detectors.select.SelectionOptions;
import io.saeguard.detectors.select.SelectionOptions.RuleChoice;
import io.saeguard.detectors.select.StringMatch;
import io.saeguard.detectors.select.TextSelection;
import io.saeguard.detectors.select.TextSelectionReport;
import io.saeguard.detectors.select.TextSplit;
import io.saeguard.sae.Sae;
import io.saeguard.sae.engine.DeviceSae;
import io.saeguard.sae.engine.SaeEngine;
import io.saeguard.sae.format.SaeLoader;
import io.saeguard.sae.lm.HiddenStateModel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;

/**
 * The half of {@code saeguard select} that builds every rule kind on one split and compares them
 * ({@link TextSelection}): from labelled text ({@code --data}) or from activation files with {@code request}
 * (for {@code --rule probe | raw-probe}).
 */
final class TextSelectionRun implements Callable<Integer> {
    private final SelectCommand c;
    private final RuleChoice written;

    TextSelectionRun(SelectCommand command, RuleChoice written) {
        this.c = command;
        this.written = written;
    }

    @Override
    public Integer call() throws Exception {
        String sid = c.saeIdOrDefault();
        SelectionOptions options = c.options(sid, written);
        Optional<StringMatch> baseline = baseline();
        Sae sae = SaeLoader.load(c.saePath);
        TextSelection.Examples pos;
        TextSelection.Examples neg;
        boolean[] posTest;
        boolean[] negTest;
        String[] posGroups = new String[0];
        String[] negGroups = new String[0];
        boolean byGroup = c.foldsBy.equals("group");
        Optional<ExampleSet> random;
        String inputs;
        try (SaeEngine engine = SaeEngine.start(c.engineOptions.options()); DeviceSae device = engine.load(sae, c.maxActive)) {
            random = c.random == null ? Optional.empty() : Optional.of(c.examples(device, sid, c.random));
            if (!c.data.isEmpty()) {
                List<io.saeguard.sidecar.eval.LabelledText> train = LabelledTexts.read(c.data);
                List<io.saeguard.sidecar.eval.LabelledText> test = LabelledTexts.read(c.testData);
                List<io.saeguard.sidecar.eval.LabelledText> p = new ArrayList<>();
                List<io.saeguard.sidecar.eval.LabelledText> n = new ArrayList<>();
                List<Boolean> pt = new ArrayList<>();
                List<Boolean> nt = new ArrayList<>();
                for (List<io.saeguard.sidecar.eval.LabelledText> part : List.of(train, test)) {
                    for (io.saeguard.sidecar.eval.LabelledText t : part) {
                        (t.label() ? p : n).add(t);
                        (t.label() ? pt : nt).add(part == test);
                    }
                }
                posTest = flags(pt);
                negTest = flags(nt);
                if (byGroup) {
                    posGroups = groups(p);
                    negGroups = groups(n);
                }
                try (HiddenStateModel lm = HiddenStateModel.open(c.model, c.tokenizer, c.maxTokens, c.engineOptions.options().cacheDir())) {
                    System.err.println("positive texts through " + lm.description() + " and the SAE:");
                    pos = LabelledTexts.encode(p, lm, device, sid);
                    System.err.println("negative texts:");
                    neg = LabelledTexts.encode(n, lm, device, sid);
                }
                inputs = "--data " + c.data + (c.testData.isEmpty() ? "" : ", --test-data " + c.testData) + ": " + p.size()
                        + " positive, " + n.size() + " negative texts through " + c.model + " (max " + c.maxTokens
                        + " tokens, special tokens not counted)";
            } else {
                if (byGroup) {
                    throw new IllegalArgumentException("--folds-by group needs --data (the JSONL 'group' field); activation files have no groups");
                }
                SelectCommand.requireExamples("--positive", c.positive);
                SelectCommand.requireExamples("--negative", c.negative);
                pos = new TextSelection.Examples(c.examples(device, sid, c.positive), Optional.empty());
                neg = new TextSelection.Examples(c.examples(device, sid, c.negative), Optional.empty());
                posTest = new boolean[0];
                negTest = new boolean[0];
                inputs = "activations " + c.positive + " (positive), " + c.negative + " (negative); no texts, so no string match";
            }
        }
        if (byGroup && c.folds != null) {
            throw new IllegalArgumentException("--folds " + c.folds + " and --folds-by group: leave-one-group-out makes one fold per "
                    + "group; drop --folds");
        }
        // The splits reported, and the folds each probe's L2 strength is chosen on: with --folds (or --folds-by group)
        // alone these are the same folds; with --test-data or --holdout, folds made over the training part only, so the
        // examples held out never enter the choice.
        double[] grid = c.l2.stream().mapToDouble(Double::doubleValue).toArray();
        List<TextSplit> splits;
        List<TextSplit> choiceFolds = List.of();
        String choiceWhat = "";
        if (c.testData.isEmpty() && (c.folds != null || byGroup)) {
            splits = byGroup ? TextSplit.byGroup(posGroups, negGroups, c.calibration, c.seed)
                    : TextSplit.folds(size(pos), size(neg), c.folds, c.calibration, c.seed);
            choiceFolds = splits;
            choiceWhat = byGroup ? "leave-one-group-out folds, the report's folds" : c.folds + " random folds, the report's folds";
        } else {
            TextSplit outer = !c.testData.isEmpty()
                    ? TextSplit.given(posTest, negTest, c.calibration, c.seed, "--test-data " + c.testData)
                    : TextSplit.holdout(size(pos), size(neg), c.holdout, c.calibration, c.seed);
            splits = List.of(outer);
        }
        if (grid.length > 1 && choiceFolds.isEmpty()) {
            int[][] train = splits.get(0).training();
            List<TextSplit> inner = byGroup ? TextSplit.byGroup(pick(posGroups, train[0]), pick(negGroups, train[1]), c.calibration, c.seed)
                    : TextSplit.folds(train[0].length, train[1].length, c.folds != null ? c.folds : 5, c.calibration, c.seed);
            choiceFolds = inner.stream().map(f -> f.within(train[0], train[1], "(of the training part)")).toList();
            choiceWhat = (byGroup ? "leave-one-group-out folds" : (c.folds != null ? c.folds : 5) + " random folds")
                    + " of the training part only (" + train[0].length + " + " + train[1].length + " examples; the held-out part never enters)";
        }
        List<L2Grid.Choice> l2 = new ArrayList<>();
        for (RuleChoice kind : List.of(RuleChoice.PROBE, RuleChoice.RAW_PROBE)) {
            if (grid.length > 1) {
                System.err.println("choosing the L2 strength of " + TextSelectionReport.kindName(kind) + " on " + choiceWhat);
            }
            L2Grid.Choice choice = L2Grid.choose(kind, pos, neg, choiceFolds, grid, options.topN(), choiceWhat);
            if (grid.length > 1) {
                System.err.println("  lambda " + choice.chosen() + " (mean fold AUROC " + java.util.Arrays.toString(choice.meanAuroc()) + ")");
            }
            l2.add(choice);
        }
        TextSelection.ProbeL2 strengths = new TextSelection.ProbeL2(l2.get(0).chosen(), l2.get(1).chosen());
        String stem = stem(c.out);
        List<TextSelection.Outcome> outcomes = new ArrayList<>();
        for (TextSplit split : splits) {
            System.err.println("building and scoring every rule: " + split.description());
            outcomes.add(TextSelection.run(pos, neg, random, split, options, strengths, c.targetFpr, baseline, stem));
        }
        TextSelection.BuiltRule chosen = outcomes.get(0).rule(written);
        DetectorDefinition definition = chosen.definition().orElseThrow(() -> new IllegalArgumentException("the "
                + TextSelectionReport.kindName(written) + " rule could not be built: " + chosen.note()));
        Path dir = Optional.ofNullable(c.out.toAbsolutePath().getParent()).orElse(Path.of("."));
        if (chosen.weights().isPresent()) {
            PooledProbe p = chosen.weights().get();
            ProbeWeights.write(dir.resolve(stem + (written == RuleChoice.PROBE ? ".probe" : ".raw-probe") + ".safetensors"), p.weight(), p.bias());
        }
        Files.writeString(c.out, DetectorDefinitions.toYaml(definition));
        String md = TextSelectionReport.markdown(c.id, sid, written, outcomes, inputs, l2);
        if (c.report != null) {
            Files.writeString(c.report, md);
        }
        if (c.json != null) {
            Files.writeString(c.json, TextSelectionReport.json(c.id, written, outcomes, l2));
        }
        if (c.scores != null) {
            writeScores(outcomes.get(0), chosen, pos, neg);
        }
        System.err.println("wrote " + c.out + (chosen.weights().isPresent() ? " and its weights" : "") + (c.report != null ? ", " + c.report : "")
                + (c.json != null ? ", " + c.json : ""));
        System.out.println(md);
        return 0;
    }

    private void writeScores(TextSelection.Outcome o, TextSelection.BuiltRule rule, TextSelection.Examples pos, TextSelection.Examples neg)
            throws Exception {
        ObjectMapper json = new ObjectMapper();
        double[] s = rule.metrics().orElseThrow().scores();
        StringBuilder out = new StringBuilder();
        int k = 0;
        for (boolean label : new boolean[] {true, false}) {
            TextSelection.Examples ex = label ? pos : neg;
            for (int e : label ? o.split().positiveTest() : o.split().negativeTest()) {
                Map<String, Object> line = new LinkedHashMap<>();
                if (ex.texts().isPresent()) {
                    line.put("text", ex.texts().get().get(e));
                } else {
                    line.put("example", e);
                }
                line.put("label", label);
                line.put("score", s[k++]);
                out.append(json.writeValueAsString(line)).append('\n');
            }
        }
        Files.writeString(c.scores, out.toString(), StandardCharsets.UTF_8);
    }

    private Optional<StringMatch> baseline() throws Exception {
        if (c.keywords == null) {
            return Optional.empty();
        }
        if (c.keywords.equals("xstest-refusal")) {
            return Optional.of(StringMatch.xstestRefusal());
        }
        Path file = Path.of(c.keywords);
        return Optional.of(StringMatch.keywords("keywords of " + file + " (match anywhere)", Files.readAllLines(file, StandardCharsets.UTF_8)));
    }

    private static int size(TextSelection.Examples e) {
        return e.texts().map(List::size).orElseGet(() -> e.set().examples().map(ids -> (int) java.util.Arrays.stream(ids).distinct().count()).orElseThrow());
    }

    /** Each text's group; --folds-by group needs one on every line. */
    private static String[] groups(List<io.saeguard.sidecar.eval.LabelledText> texts) {
        String[] out = new String[texts.size()];
        for (int i = 0; i < out.length; i++) {
            io.saeguard.sidecar.eval.LabelledText t = texts.get(i);
            out[i] = t.group().orElseThrow(() -> new IllegalArgumentException(t.file() + ":" + t.line() + ": no \"group\" field; "
                    + "--folds-by group makes one fold per group value: add \"group\" to every line or use --folds K"));
        }
        return out;
    }

    private static String[] pick(String[] all, int[] which) {
        String[] out = new String[which.length];
        for (int i = 0; i < which.length; i++) {
            out[i] = all[which[i]];
        }
        return out;
    }

    private static boolean[] flags(List<Boolean> b) {
        boolean[] out = new boolean[b.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = b.get(i);
        }
        return out;
    }

    private static String stem(Path out) {
        String name = Optional.ofNullable(out.getFileName()).map(Path::toString).orElse("detector");
        int dot = name.lastIndexOf('.');
        return dot > 0 ? name.substring(0, dot) : name;
    }
}
