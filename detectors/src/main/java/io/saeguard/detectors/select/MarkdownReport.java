package io.saeguard.detectors.select;

import java.util.Locale;
import java.util.Optional;

/** Renders a {@link SelectionReport} as Markdown, for {@code saeguard select --report REPORT.md}. */
public final class MarkdownReport {
    private MarkdownReport() {}

    public static String render(SelectionReport r) {
        SelectionOptions o = r.options();
        StringBuilder md = new StringBuilder(4096);
        md.append("# Feature selection: `").append(o.detectorId()).append("`\n\n");
        md.append("| setting | value |\n|---|---|\n");
        row(md, "SAE", "`" + o.sae() + "`");
        row(md, "ranking", o.method() == SelectionOptions.Method.DSG
                ? "DSG importance (arXiv 2504.08192; saeguard docs/algorithms.md#dsg-importance): ratio ≥ P"
                        + num(o.ratioPercentile()) + ", forget score ≥ P" + num(o.floorPercentile())
                : "mean difference (arXiv 2502.16681; saeguard docs/algorithms.md#mean-difference)");
        row(md, "rule written", o.rule() == SelectionOptions.RuleChoice.DSG
                ? "dsg" + (o.window().isPresent() ? ", window " + o.window().getAsInt() : "") : "features (match any, aggregate max)");
        row(md, "top N", Integer.toString(o.topN()));
        row(md, "LangFIR random-token limit",
                pct(o.randomRateLimit()) + " of random tokens (arXiv 2604.03532; saeguard docs/algorithms.md#langfir)");
        row(md, "candidates before LangFIR / top N", Integer.toString(r.candidates()));
        row(md, "dropped by LangFIR", r.droppedByRandom().isEmpty() ? "none" : r.droppedByRandom().toString());
        row(md, "calibration", r.calibration());
        row(md, "training examples", r.trainPositives() + " positive, " + r.trainNegatives() + " negative (unit: " + r.evaluationUnit() + ")");
        row(md, "held-out split", pct(o.holdoutFraction()) + " of each class, seed " + o.seed());
        md.append('\n');

        md.append("## Chosen features\n\n");
        boolean random = r.features().stream().anyMatch(f -> f.frequencyRandom().isPresent());
        md.append("| rank | feature | mean + | mean − | fires + | fires − |").append(random ? " fires random |" : "")
                .append(" ratio (m+)²/(m−)² | mean diff | threshold |\n");
        md.append("|---:|---:|---:|---:|---:|---:|").append(random ? "---:|" : "").append("---:|---:|---:|\n");
        int rank = 1;
        for (ChosenFeature f : r.features()) {
            md.append("| ").append(rank++).append(" | ").append(f.id()).append(" | ").append(num(f.meanPositive()))
                    .append(" | ").append(num(f.meanNegative())).append(" | ").append(pct(f.frequencyPositive()))
                    .append(" | ").append(pct(f.frequencyNegative())).append(" | ");
            if (random) {
                md.append(f.frequencyRandom().isPresent() ? pct(f.frequencyRandom().getAsDouble()) : "").append(" | ");
            }
            md.append(f.importanceRatio() > 1e12 ? "∞" : num(f.importanceRatio())).append(" | ").append(num(f.meanDifference()))
                    .append(" | ").append(num(f.threshold())).append(" |\n");
        }
        md.append('\n');

        md.append("## Held-out evaluation\n\n");
        md.append("| detector | AUROC | precision | recall | operating point | positives | negatives |\n");
        md.append("|---|---:|---:|---:|---|---:|---:|\n");
        metrics(md, "`" + o.detectorId() + "` (" + (o.rule() == SelectionOptions.RuleChoice.DSG ? "dsg" : "features") + ")",
                Optional.of(r.detector()), "score ≥ 1");
        metrics(md, "raw-probe baseline", r.baseline(), "p ≥ 0.5");
        md.append('\n').append("Baseline: ").append(r.baselineNote()).append(".\n\n");
        md.append("The sparse-probing study (\"Are Sparse Autoencoders Useful? A Case Study in Sparse Probing\", arXiv 2502.16681) "
                + "found raw-activation probes hard to beat; an SAE detector's "
                + "value is that its features can be read and audited. Review each feature (e.g. on Neuronpedia) before "
                + "deploying, and add labels to the YAML.\n");
        return md.toString();
    }

    private static void metrics(StringBuilder md, String name, Optional<ClassifierMetrics> m, String op) {
        if (m.isEmpty()) {
            md.append("| ").append(name).append(" | – | – | – | – | – | – |\n");
            return;
        }
        ClassifierMetrics c = m.get();
        md.append("| ").append(name).append(" | ").append(String.format(Locale.ROOT, "%.3f", c.auroc())).append(" | ")
                .append(String.format(Locale.ROOT, "%.3f", c.precision())).append(" | ")
                .append(String.format(Locale.ROOT, "%.3f", c.recall())).append(" | ").append(op).append(" | ")
                .append(c.positives()).append(" | ").append(c.negatives()).append(" |\n");
    }

    private static void row(StringBuilder md, String key, String value) {
        md.append("| ").append(key).append(" | ").append(value.replace("|", "\\|")).append(" |\n");
    }

    private static String num(double v) {
        return String.format(Locale.ROOT, "%.4g", v);
    }

    private static String pct(double v) {
        return String.format(Locale.ROOT, "%.2f %%", 100 * v);
    }
}
