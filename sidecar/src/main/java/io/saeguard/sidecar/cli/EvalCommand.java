package io.saeguard.sidecar.cli;

import io.saeguard.detectors.DetectorDefinition;
import io.saeguard.detectors.DetectorDefinitions;
import io.saeguard.detectors.eval.DetectionMetrics;
import io.saeguard.sae.Sae;
import io.saeguard.sae.format.SaeLoader;
import io.saeguard.sidecar.config.ConfigLoader;
import io.saeguard.sidecar.config.SidecarConfig;
import io.saeguard.sidecar.eval.EvalReport;
import io.saeguard.sidecar.eval.Evaluation;
import io.saeguard.sidecar.pipeline.CheckEngine;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code saeguard eval}: measures a config's detectors on labelled text. Every text goes the way a prompt event goes
 * (prompt model → SAE → every detector of that SAE), in process through a check-only engine, no Kafka; the report
 * gives each detector's AUROC, TPR at 1 % FPR, and precision and recall at its policy (docs/algorithms.md#detection-quality).
 */
@Command(name = "eval", mixinStandardHelpOptions = true, description = {"Measures a config's detectors on labelled texts.",
        "Each --data file is JSONL: {\"text\": \"...\", \"label\": true|false} per line, an optional \"group\" for a per-group "
                + "breakdown, other fields ignored. Each text runs through the config's prompt model, its SAE and every detector of "
                + "that SAE, as POST /v1/check would run it. Progress goes to stderr, a summary to stdout."})
final class EvalCommand implements Callable<Integer> {
    @Option(names = "--config", required = true, description = "the sidecar config (YAML) whose prompt model, SAE and detectors are measured")
    Path config;

    @Option(names = "--data", required = true, description = "labelled JSONL file (repeat for several)")
    List<Path> data;

    @Option(names = "--out", required = true, description = "JSON report to write")
    Path out;

    @Option(names = "--report", description = "Markdown report to write")
    Path report;

    @Option(names = "--scores", description = "JSONL to write, one line per text: index, file, line, label, group, tokens, the decision "
            + "and every detector's verdict (score, action, alert, failure)")
    Path scores;

    @Option(names = "--scores-text", description = "put each text in the scores file too (by default it holds no text)")
    boolean scoresText;

    @Option(names = "--in-flight", defaultValue = "64", description = "texts queued at the engine at once, so they batch (default ${DEFAULT-VALUE})")
    int inFlight;

    @Override
    public Integer call() throws Exception {
        SidecarConfig cfg = ConfigLoader.load(Optional.of(config));
        if (cfg.prompts().isEmpty()) {
            throw new IllegalArgumentException(config + ": the config has no prompts: section, so eval cannot run text; add one naming the "
                    + "prompt model whose hidden states its SAE reads (README, Configuration)");
        }
        List<Evaluation.DataFile> files = Evaluation.survey(data); // a bad line fails before the engine starts
        Map<String, Sae> saes = new LinkedHashMap<>();
        for (SidecarConfig.SaeEntry e : cfg.saes()) {
            saes.put(e.id(), SaeLoader.load(e.path()));
        }
        List<DetectorDefinition> definitions = DetectorDefinitions.loadAll(cfg.detectors());
        Evaluation.Outcome outcome;
        try (CheckEngine engine = CheckEngine.start(cfg, saes, definitions, Duration.ofMinutes(5))) {
            Evaluation evaluation = new Evaluation(engine, new Evaluation.Options(inFlight, scoresText, Duration.ofMinutes(5)), System.err);
            int maxTokens = cfg.prompts().get().maxTokens();
            if (scores != null) {
                try (Writer w = Files.newBufferedWriter(scores, StandardCharsets.UTF_8)) {
                    outcome = evaluation.run(files, Optional.of(w), maxTokens);
                }
            } else {
                outcome = evaluation.run(files, Optional.empty(), maxTokens);
            }
        }
        EvalReport r = new EvalReport(outcome);
        Files.writeString(out, r.json());
        if (report != null) {
            Files.writeString(report, r.markdown());
        }
        System.out.printf("%d texts (%d positive, %d negative) through SAE '%s'%n", outcome.labels().length,
                outcome.files().stream().mapToInt(Evaluation.DataFile::positives).sum(),
                outcome.files().stream().mapToInt(Evaluation.DataFile::negatives).sum(), outcome.sae());
        r.overall().forEach((id, m) -> System.out.println(line(id, m)));
        if (outcome.atMaxTokens() > 0) {
            System.out.printf("%d texts filled prompts.max_tokens (%d) and were cut short%n", outcome.atMaxTokens(), outcome.maxTokens());
        }
        System.out.println("report: " + out + (report != null ? ", " + report : "") + (scores != null ? ", scores: " + scores : ""));
        return 0;
    }

    private static String line(String id, DetectionMetrics m) {
        return String.format(Locale.ROOT, "%s: AUROC %s, TPR@1%%FPR %s (threshold %s), precision %s, recall %s (at its policy)", id, f(m.auroc()),
                f(m.tprAtTargetFpr()), f(m.threshold()), f(m.precision()), f(m.recall()));
    }

    private static String f(double v) {
        return Double.isFinite(v) ? String.format(Locale.ROOT, "%.3f", v) : "n/a";
    }
}
