package io.saeguard.detectors.select;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.saeguard.detectors.select.SelectionOptions.RuleChoice;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * Renders {@link TextSelection} outcomes (one split, or K folds) as Markdown and JSON: every rule beside the dense
 * raw-activation probe and the string-match baseline, on the same held-out examples.
 */
public final class TextSelectionReport {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private TextSelectionReport() {}

    /** The name of a rule kind as YAML writes it. */
    public static String kindName(RuleChoice r) {
        return r.name().toLowerCase(Locale.ROOT).replace('_', '-');
    }

    /**
     * JSON: {@code {"detector", "written_rule", "target_fpr", "folds": [{"split", "rules": {"<kind>": {"auroc",
     * "tpr_at_target_fpr", "precision", "recall", "threshold", "n_positive", "n_negative", "features", "note"}},
     * "string_match": {...}}], "mean": {...}}}}; {@code mean} is over folds (equal to the one fold without --folds).
     */
    public static String json(String detectorId, RuleChoice written, List<TextSelection.Outcome> folds) {
        return json(detectorId, written, folds, List.of());
    }

    /**
     * As {@link #json(String, RuleChoice, List)}, plus {@code "l2": {"<kind>": {"chosen", "folds", "grid": [{"lambda",
     * "mean_auroc", "fold_auroc": [...]}]}}}: each probe's L2 strength and, when folds chose it, every λ's fold AUROCs.
     */
    public static String json(String detectorId, RuleChoice written, List<TextSelection.Outcome> folds, List<L2Grid.Choice> l2) {
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("detector", detectorId);
        root.put("written_rule", kindName(written));
        root.put("target_fpr", folds.get(0).targetFpr());
        root.put("string_match_baseline", folds.get(0).stringMatchName());
        List<Object> out = new ArrayList<>();
        for (TextSelection.Outcome o : folds) {
            Map<String, Object> f = new LinkedHashMap<>();
            f.put("split", o.split().description());
            Map<String, Object> rules = new LinkedHashMap<>();
            for (TextSelection.BuiltRule r : o.rules()) {
                Map<String, Object> m = r.metrics().map(TextSelectionReport::metrics).orElseGet(LinkedHashMap::new);
                m.put("features", r.features());
                m.put("note", r.note());
                rules.put(kindName(r.rule()), m);
            }
            f.put("rules", rules);
            o.stringMatch().ifPresent(s -> f.put("string_match", metrics(s)));
            out.add(f);
        }
        root.put("folds", out);
        root.put("mean", mean(folds));
        Map<String, Object> lambdas = new LinkedHashMap<>();
        for (L2Grid.Choice c : l2) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("chosen", c.chosen());
            m.put("folds", c.folds());
            List<Object> grid = new ArrayList<>();
            for (int i = 0; c.chosenByFolds() && i < c.lambdas().length; i++) {
                Map<String, Object> g = new LinkedHashMap<>();
                g.put("lambda", c.lambdas()[i]);
                g.put("mean_auroc", c.meanAuroc()[i]);
                g.put("fold_auroc", c.foldAuroc()[i]);
                grid.add(g);
            }
            m.put("grid", grid);
            lambdas.put(kindName(c.rule()), m);
        }
        if (!lambdas.isEmpty()) {
            root.put("l2", lambdas);
        }
        try {
            return JSON.writeValueAsString(root);
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static Map<String, Object> metrics(TextSelection.HeldOut h) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("auroc", h.auroc());
        m.put("tpr_at_target_fpr", h.tprAtFpr());
        m.put("precision", h.atPolicy().precision());
        m.put("recall", h.atPolicy().recall());
        m.put("threshold", h.atPolicy().threshold());
        m.put("n_positive", h.atPolicy().positives());
        m.put("n_negative", h.atPolicy().negatives());
        return m;
    }

    /** Per scorer, the mean of each number over the folds where it was built. */
    private static Map<String, Map<String, Double>> mean(List<TextSelection.Outcome> folds) {
        Map<String, List<TextSelection.HeldOut>> by = new LinkedHashMap<>();
        for (TextSelection.Outcome o : folds) {
            for (TextSelection.BuiltRule r : o.rules()) {
                r.metrics().ifPresent(h -> by.computeIfAbsent(kindName(r.rule()), k -> new ArrayList<>()).add(h));
            }
            o.stringMatch().ifPresent(h -> by.computeIfAbsent("string-match", k -> new ArrayList<>()).add(h));
        }
        Map<String, Map<String, Double>> out = new LinkedHashMap<>();
        by.forEach((name, hs) -> {
            Map<String, Double> m = new LinkedHashMap<>();
            m.put("auroc", hs.stream().mapToDouble(TextSelection.HeldOut::auroc).average().orElseThrow());
            m.put("tpr_at_target_fpr", hs.stream().mapToDouble(TextSelection.HeldOut::tprAtFpr).average().orElseThrow());
            m.put("precision", hs.stream().mapToDouble(h -> h.atPolicy().precision()).average().orElseThrow());
            m.put("recall", hs.stream().mapToDouble(h -> h.atPolicy().recall()).average().orElseThrow());
            m.put("folds", (double) hs.size());
            out.put(name, m);
        });
        return out;
    }

    /** Markdown: settings, one comparison table per fold (and their mean), the probe's features, notes. */
    public static String markdown(String detectorId, String sae, RuleChoice written, List<TextSelection.Outcome> folds, String inputs) {
        return markdown(detectorId, sae, written, folds, inputs, List.of());
    }

    /** As {@link #markdown(String, String, RuleChoice, List, String)}, plus each probe's L2 strength and its grid. */
    public static String markdown(String detectorId, String sae, RuleChoice written, List<TextSelection.Outcome> folds, String inputs,
            List<L2Grid.Choice> l2) {
        StringBuilder md = new StringBuilder(4096);
        TextSelection.Outcome first = folds.get(0);
        double fpr = first.targetFpr();
        md.append("# saeguard select: `").append(detectorId).append("`\n\n");
        md.append("| setting | value |\n|---|---|\n");
        md.append("| SAE | `").append(sae).append("` |\n");
        md.append("| inputs | ").append(inputs.replace("|", "\\|")).append(" |\n");
        md.append("| rule written | ").append(kindName(written)).append(folds.size() > 1 ? " (fold 1's)" : "").append(" |\n");
        md.append("| target FPR | ").append(fpr).append(" (each band calibrated on the calibration negatives, never on the held-out part) |\n");
        md.append("| pooling | probes: mean of the text's counted tokens (the written detector: token_score logit, aggregate mean) |\n");
        md.append("| string-match baseline | ").append(first.stringMatchName().replace("|", "\\|")).append(" |\n\n");
        for (int i = 0; i < folds.size(); i++) {
            TextSelection.Outcome o = folds.get(i);
            md.append("## Held-out: ").append(o.split().description()).append("\n\n");
            table(md, o, fpr);
        }
        if (folds.size() > 1) {
            md.append("## Mean over ").append(folds.size()).append(" folds\n\n| scorer | AUROC | TPR @ FPR ").append(fpr)
                    .append(" | precision | recall |\n|---|---:|---:|---:|---:|\n");
            mean(folds).forEach((name, m) -> md.append(String.format(Locale.ROOT, "| %s | %.3f | %.3f | %.3f | %.3f |%n", name,
                    m.get("auroc"), m.get("tpr_at_target_fpr"), m.get("precision"), m.get("recall"))));
            md.append('\n');
        }
        lambdaTable(md, l2);
        md.append("## How each rule was built (").append(folds.size() > 1 ? "fold 1" : "this split").append(")\n\n");
        for (TextSelection.BuiltRule r : first.rules()) {
            md.append("- **").append(kindName(r.rule())).append("**: ").append(r.note());
            if (r.rule() == RuleChoice.PROBE && r.weights().isPresent()) {
                md.append("; features (weight): ");
                PooledProbe p = r.weights().get();
                List<String> parts = new ArrayList<>();
                for (int f : p.features()) {
                    parts.add(f + String.format(Locale.ROOT, " (%+.3g)", p.weight()[f]));
                }
                md.append(String.join(", ", parts));
            } else if (r.features().length > 0) {
                md.append("; features: ").append(java.util.Arrays.toString(r.features()));
            }
            md.append('\n');
        }
        md.append("\nAUROC is threshold-free; TPR @ FPR takes its threshold from the held-out negatives (an oracle, as "
                + "`saeguard eval` reports it); precision and recall are at the written policy (score ≥ the calibrated band). "
                + "The dense raw-activation probe is the sparse-probing paper's strong baseline (arXiv 2502.16681); an SAE "
                + "detector's case is that its features can be read and audited.\n");
        return md.toString();
    }

    /** Each probe's λ; when folds chose it, the grid's mean (and per-fold) AUROC, the chosen λ in bold. */
    private static void lambdaTable(StringBuilder md, List<L2Grid.Choice> l2) {
        List<L2Grid.Choice> chosen = l2.stream().filter(L2Grid.Choice::chosenByFolds).toList();
        for (L2Grid.Choice c : l2) {
            if (!c.chosenByFolds()) {
                md.append(String.format(Locale.ROOT, "L2 strength of %s: lambda %s (one value given).%n%n", kindName(c.rule()), c.chosen()));
            }
        }
        if (chosen.isEmpty()) {
            return;
        }
        md.append("## L2 strength, chosen on training folds\n\n");
        for (L2Grid.Choice c : chosen) {
            md.append("**").append(kindName(c.rule())).append("**: lambda ").append(c.chosen()).append(", the best mean AUROC over ")
                    .append(c.foldAuroc()[0].length).append(" folds (").append(c.folds().replace("|", "\\|")).append(")\n\n");
            md.append("| lambda | mean AUROC | per fold |\n|---:|---:|---|\n");
            for (int i = 0; i < c.lambdas().length; i++) {
                boolean best = c.lambdas()[i] == c.chosen();
                List<String> per = new ArrayList<>();
                for (double a : c.foldAuroc()[i]) {
                    per.add(String.format(Locale.ROOT, "%.3f", a));
                }
                md.append(String.format(Locale.ROOT, "| %s%s%s | %.3f | %s |%n", best ? "**" : "", c.lambdas()[i], best ? "**" : "",
                        c.meanAuroc()[i], String.join(" ", per)));
            }
            md.append('\n');
        }
    }

    private static void table(StringBuilder md, TextSelection.Outcome o, double fpr) {
        md.append("| scorer | AUROC | TPR @ FPR ").append(fpr).append(" | precision | recall | policy threshold | positives | negatives |\n");
        md.append("|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for (TextSelection.BuiltRule r : o.rules()) {
            String name = kindName(r.rule()) + (r.rule() == RuleChoice.RAW_PROBE ? " (dense baseline)" : "");
            row(md, name, r.metrics(), r.metrics().isEmpty() ? r.note() : "");
        }
        row(md, "string match", o.stringMatch(), o.stringMatch().isEmpty() ? "no texts or no phrases" : "");
        md.append('\n');
    }

    private static void row(StringBuilder md, String name, Optional<TextSelection.HeldOut> h, String why) {
        if (h.isEmpty()) {
            md.append("| ").append(name).append(" | – | – | – | – | ").append(why.replace("|", "\\|")).append(" | | |\n");
            return;
        }
        TextSelection.HeldOut m = h.get();
        md.append(String.format(Locale.ROOT, "| %s | %.3f | %.3f | %.3f | %.3f | %.4g | %d | %d |%n", name, m.auroc(), m.tprAtFpr(),
                m.atPolicy().precision(), m.atPolicy().recall(), m.atPolicy().threshold(), m.atPolicy().positives(),
                m.atPolicy().negatives()));
    }
}
