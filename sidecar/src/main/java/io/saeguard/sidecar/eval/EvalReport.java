package io.saeguard.sidecar.eval;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.saeguard.detectors.eval.DetectionMetrics;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * {@code saeguard eval}'s reports from an {@link Evaluation.Outcome}: the JSON report, whose
 * {@code detectors.<id>} objects always hold {@code auroc}, {@code tpr_at_1pct_fpr}, {@code precision},
 * {@code recall}, {@code n_positive}, {@code n_negative} (a metric that is undefined, e.g. precision when nothing was
 * flagged, is {@code null}), and a Markdown rendering of the same numbers. Definitions: {@link DetectionMetrics}.
 */
public final class EvalReport {
    /** The false-positive rate of {@code tpr_at_1pct_fpr}. */
    public static final double TARGET_FPR = 0.01;
    /** Bootstrap resamples for the AUROC interval. */
    public static final int RESAMPLES = 1000;
    /** The bootstrap's seed: the same data gives the same interval. */
    public static final long SEED = 20240501L;

    static final String THRESHOLD_RULE = "tau = the smallest observed score (of a positive or a negative) at which at most floor(0.01 * "
            + "n_negative) negatives score >= tau (no such score: the next double above the highest score); tpr_at_1pct_fpr = share of "
            + "positives with score >= tau; equivalently, with k = floor(0.01 * n_negative) and s the (k+1)-th highest negative score, "
            + "the share of positives scoring strictly above s";

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private final Evaluation.Outcome outcome;
    private final Map<String, DetectionMetrics> overall = new LinkedHashMap<>();
    private final Map<String, double[]> intervals = new LinkedHashMap<>();
    private final Map<String, Map<String, DetectionMetrics>> byGroup = new LinkedHashMap<>();

    public EvalReport(Evaluation.Outcome outcome) {
        this.outcome = outcome;
        for (String d : outcome.detectors()) {
            double[] s = outcome.scores().get(d);
            boolean[] f = outcome.flagged().get(d);
            overall.put(d, DetectionMetrics.of(s, f, outcome.labels(), TARGET_FPR));
            intervals.put(d, DetectionMetrics.aurocInterval(s, outcome.labels(), RESAMPLES, SEED, 0.95));
            Map<String, DetectionMetrics> groups = new LinkedHashMap<>();
            for (int g = 0; g < outcome.groupNames().size(); g++) {
                int group = g;
                int[] idx = IntStream.range(0, s.length).filter(i -> outcome.groups()[i] == group).toArray();
                double[] gs = new double[idx.length];
                boolean[] gf = new boolean[idx.length];
                boolean[] gl = new boolean[idx.length];
                for (int j = 0; j < idx.length; j++) {
                    gs[j] = s[idx[j]];
                    gf[j] = f[idx[j]];
                    gl[j] = outcome.labels()[idx[j]];
                }
                groups.put(outcome.groupNames().get(g), DetectionMetrics.of(gs, gf, gl, TARGET_FPR));
            }
            byGroup.put(d, groups);
        }
    }

    /** Each detector's metrics over all texts. */
    public Map<String, DetectionMetrics> overall() {
        return overall;
    }

    /** The JSON report. */
    public String json() {
        ObjectNode root = JSON.createObjectNode();
        ObjectNode detectors = root.putObject("detectors");
        for (String d : outcome.detectors()) {
            ObjectNode o = metrics(detectors.putObject(d), overall.get(d));
            DetectionMetrics m = overall.get(d);
            o.putArray("auroc_ci95").add(number(intervals.get(d)[0])).add(number(intervals.get(d)[1]));
            put(o, "threshold_at_1pct_fpr", m.threshold());
            put(o, "fpr_at_threshold", m.fprAtThreshold());
            o.put("n_unscored", m.unscored());
            o.putObject("confusion").put("tp", m.truePositives()).put("fp", m.falsePositives()).put("tn", m.trueNegatives())
                    .put("fn", m.falseNegatives());
            if (!byGroup.get(d).isEmpty()) {
                ObjectNode groups = o.putObject("groups");
                byGroup.get(d).forEach((g, gm) -> metrics(groups.putObject(g), gm));
            }
        }
        ObjectNode skipped = root.putObject("skipped_detectors");
        outcome.skipped().forEach(skipped::put);
        root.put("sae", outcome.sae());
        root.put("texts", outcome.labels().length);
        for (Evaluation.DataFile f : outcome.files()) {
            root.withArray("data").addObject().put("file", f.file().toString()).put("texts", f.texts()).put("positives", f.positives())
                    .put("negatives", f.negatives());
        }
        root.put("max_tokens", outcome.maxTokens());
        root.put("texts_at_max_tokens", outcome.atMaxTokens());
        root.put("seconds", Math.round(outcome.seconds() * 10) / 10.0);
        ObjectNode defs = root.putObject("definitions");
        defs.put("auroc", "from each detector's score over the texts it scored: P(positive scores above negative), ties counted half");
        defs.put("tpr_at_1pct_fpr", THRESHOLD_RULE);
        defs.put("precision_recall", "at the detector's own policy: a text is predicted positive when its action is not 'allow'");
        defs.put("auroc_ci95", "percentile bootstrap, " + RESAMPLES + " stratified resamples, seed " + SEED);
        defs.put("n_unscored", "texts on which the detector failed (score NaN): left out of auroc and tpr, counted at the policy");
        defs.put("null", "a metric undefined on these texts (e.g. precision when nothing was flagged, auroc with one class)");
        try {
            return JSON.writeValueAsString(root) + "\n";
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static ObjectNode metrics(ObjectNode o, DetectionMetrics m) {
        put(o, "auroc", m.auroc());
        put(o, "tpr_at_1pct_fpr", m.tprAtTargetFpr());
        put(o, "precision", m.precision());
        put(o, "recall", m.recall());
        o.put("n_positive", m.positives());
        o.put("n_negative", m.negatives());
        return o;
    }

    private static void put(ObjectNode o, String key, double v) {
        if (Double.isFinite(v)) {
            o.put(key, v);
        } else {
            o.putNull(key);
        }
    }

    private static com.fasterxml.jackson.databind.JsonNode number(double v) {
        return Double.isFinite(v) ? JSON.getNodeFactory().numberNode(v) : JSON.getNodeFactory().nullNode();
    }

    /** The Markdown report: one table of the detectors, then one per detector by group. */
    public String markdown() {
        StringBuilder md = new StringBuilder("# saeguard eval\n\n");
        md.append(String.format(Locale.ROOT, "%d texts through SAE `%s`", outcome.labels().length, outcome.sae()));
        for (Evaluation.DataFile f : outcome.files()) {
            md.append(String.format(Locale.ROOT, "; `%s`: %d positive, %d negative", f.file(), f.positives(), f.negatives()));
        }
        md.append(String.format(Locale.ROOT, ". %d texts filled max_tokens (%d) and were cut short.%n%n", outcome.atMaxTokens(),
                outcome.maxTokens()));
        md.append("| detector | AUROC | 95 % CI | TPR @ 1 % FPR | threshold | precision | recall | TP | FP | FN | TN | unscored |\n");
        md.append("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (String d : outcome.detectors()) {
            DetectionMetrics m = overall.get(d);
            double[] ci = intervals.get(d);
            md.append(String.format(Locale.ROOT, "| %s | %s | %s–%s | %s | %s | %s | %s | %d | %d | %d | %d | %d |%n", d, f3(m.auroc()), f3(ci[0]),
                    f3(ci[1]), f3(m.tprAtTargetFpr()), f3(m.threshold()), f3(m.precision()), f3(m.recall()), m.truePositives(),
                    m.falsePositives(), m.falseNegatives(), m.trueNegatives(), m.unscored()));
        }
        outcome.skipped().forEach((d, why) -> md.append("\nNot scored: `").append(d).append("` ").append(why).append(".\n"));
        for (String d : outcome.detectors()) {
            if (byGroup.get(d).isEmpty()) {
                continue;
            }
            md.append("\n## `").append(d).append("` by group\n\n| group | AUROC | TPR @ 1 % FPR | precision | recall | positives | negatives |\n")
                    .append("|---|---|---|---|---|---|---|\n");
            byGroup.get(d).forEach((g, m) -> md.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %s | %d | %d |%n", g, f3(m.auroc()),
                    f3(m.tprAtTargetFpr()), f3(m.precision()), f3(m.recall()), m.positives(), m.negatives())));
        }
        List<String> defs = new ArrayList<>(List.of(
                "AUROC: from each detector's score, P(a positive scores above a negative), ties counted half; 95 % CI: percentile bootstrap, "
                        + RESAMPLES + " stratified resamples, seed " + SEED + ".",
                "TPR @ 1 % FPR: " + THRESHOLD_RULE + ".",
                "Precision and recall: at the detector's own policy, a text is a predicted positive when its action is not `allow`.",
                "Unscored: texts on which the detector failed (score NaN), left out of AUROC and TPR, counted at the policy. "
                        + "– : undefined on these texts."));
        md.append("\n## Definitions\n\n");
        defs.forEach(s -> md.append("- ").append(s).append('\n'));
        return md.toString();
    }

    private static String f3(double v) {
        return Double.isFinite(v) ? String.format(Locale.ROOT, "%.3f", v) : "–";
    }
}
