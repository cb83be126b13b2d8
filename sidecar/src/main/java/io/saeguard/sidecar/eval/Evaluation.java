package io.saeguard.sidecar.eval;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.saeguard.detectors.ChunkOutcome;
import io.saeguard.detectors.DetectorDefinition;
import io.saeguard.detectors.Verdict;
import io.saeguard.sidecar.pipeline.CheckEngine;
import io.saeguard.sidecar.pipeline.CheckRequest;
import io.saeguard.sidecar.pipeline.CheckResult;
import io.saeguard.sidecar.pipeline.VerdictsJson;
import io.saeguard.topics.events.Action;
import io.saeguard.topics.events.Decision;
import java.io.IOException;
import java.io.PrintStream;
import java.io.Writer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Runs labelled texts through a {@link CheckEngine} as {@code POST /v1/check} would run them (prompt model → the SAE
 * serving it → every detector of that SAE), each under a fresh request id, and keeps each detector's score and policy
 * outcome per text. Up to {@link Options#inFlight} texts are queued at once so the engine batches them; texts are read
 * one line at a time and dropped once checked, so memory holds the window plus a few numbers per text.
 *
 * <p>{@link #survey} reads every file once to validate and count it before an engine is started, so a bad line fails
 * at once. Not thread-safe: one evaluation per instance, on the calling thread.
 */
public final class Evaluation {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long PROGRESS_NANOS = TimeUnit.SECONDS.toNanos(2);

    /**
     * @param inFlight      texts queued at the engine at once
     * @param scoresText    whether the scores file carries each text (by default it does not)
     * @param checkTimeout  how long one check may take before the run fails
     */
    public record Options(int inFlight, boolean scoresText, Duration checkTimeout) {
        public Options {
            if (inFlight < 1) {
                throw new IllegalArgumentException("--in-flight must be at least 1, found " + inFlight);
            }
        }
    }

    /** A data file's share of the texts. */
    public record DataFile(Path file, int texts, int positives, int negatives) {
    }

    /**
     * What the evaluation saw, per text (arrays indexed by the texts' {@link LabelledText#index}).
     *
     * @param sae          the SAE the texts went to
     * @param detectors    the detectors scored, in evaluation order
     * @param skipped      detectors of the config not scored, with why
     * @param scores       per detector, each text's score (NaN: the detector failed on it)
     * @param flagged      per detector, whether its policy chose anything but {@code allow}
     * @param labels       each text's label
     * @param groups       each text's group, an index into {@code groupNames}, or -1
     * @param groupNames   the groups seen, in order of first appearance
     * @param files        the data files in order
     * @param maxTokens    the prompt model's {@code max_tokens}
     * @param atMaxTokens  texts that filled {@code max_tokens} (probably cut short)
     * @param seconds      wall time of the checks
     */
    public record Outcome(String sae, List<String> detectors, Map<String, String> skipped, Map<String, double[]> scores,
            Map<String, boolean[]> flagged, boolean[] labels, int[] groups, List<String> groupNames, List<DataFile> files, int maxTokens,
            int atMaxTokens, double seconds) {
    }

    private record Pending(LabelledText text, CompletableFuture<CheckResult> result) {
    }

    private final CheckEngine engine;
    private final Options options;
    private final PrintStream progress;
    private final String runId = UUID.randomUUID().toString().substring(0, 8);

    /** @param progress where progress lines go (stderr for the command) */
    public Evaluation(CheckEngine engine, Options options, PrintStream progress) {
        this.engine = engine;
        this.options = options;
        this.progress = progress;
    }

    /**
     * Reads every file once to validate and count its texts, so that a bad line fails before an engine is started.
     *
     * @throws LabelledDataException for a bad line, naming the file and the line
     * @throws IllegalArgumentException when the files hold no text
     */
    public static List<DataFile> survey(List<Path> data) {
        List<DataFile> files = new ArrayList<>();
        int total = 0;
        for (Path f : data) {
            int n = 0;
            int pos = 0;
            try (LabelledTextReader r = LabelledTextReader.open(f, total)) {
                for (Optional<LabelledText> t = r.next(); t.isPresent(); t = r.next()) {
                    n++;
                    pos += t.get().label() ? 1 : 0;
                }
            }
            files.add(new DataFile(f, n, pos, n - pos));
            total += n;
        }
        if (total == 0) {
            throw new IllegalArgumentException("the data holds no text (" + data + "); give JSONL lines {\"text\": ..., \"label\": true|false}");
        }
        return List.copyOf(files);
    }

    /**
     * Checks every text of the {@link #survey surveyed} files, in order; writes one line per text to {@code scores}
     * when given.
     *
     * @param maxTokens the prompt model's {@code max_tokens}, to count texts it probably cut short
     * @throws IllegalArgumentException when the config has no prompt model or no detector on its SAE
     * @throws IllegalStateException when a check fails, naming the text's file and line
     */
    public Outcome run(List<DataFile> files, Optional<Writer> scores, int maxTokens) throws IOException, InterruptedException {
        String sae = engine.promptSae().orElseThrow(() -> new IllegalArgumentException("the config has no prompt model ('prompts:'), so it "
                + "cannot check text; add a prompts: section naming the model whose hidden states its SAE reads (README, Configuration)"));
        List<String> detectors = new ArrayList<>();
        Map<String, String> skipped = new LinkedHashMap<>();
        for (DetectorDefinition d : engine.detectorDefinitions()) {
            if (d.sae().equals(sae)) {
                detectors.add(d.id());
            } else {
                skipped.put(d.id(), "runs on SAE '" + d.sae() + "', which texts do not reach (the prompt model feeds SAE '" + sae + "')");
            }
        }
        if (detectors.isEmpty()) {
            throw new IllegalArgumentException("no detector of the config runs on SAE '" + sae + "', the one the prompt model feeds; "
                    + "list a detector with 'sae: " + sae + "' under detectors:");
        }
        int total = files.stream().mapToInt(DataFile::texts).sum();
        List<Path> data = files.stream().map(DataFile::file).toList();
        // A window of texts in flight, so the engine batches them.
        Map<String, double[]> scoreColumns = new LinkedHashMap<>();
        Map<String, boolean[]> flaggedColumns = new LinkedHashMap<>();
        for (String d : detectors) {
            scoreColumns.put(d, new double[total]);
            flaggedColumns.put(d, new boolean[total]);
        }
        boolean[] labels = new boolean[total];
        int[] groups = new int[total];
        List<String> groupNames = new ArrayList<>();
        Map<String, Integer> groupIds = new HashMap<>();
        int atMax = 0;
        int done = 0;
        long t0 = System.nanoTime();
        long lastProgress = t0;
        progress.printf("eval: %d texts from %d file(s) through SAE '%s' and %d detector(s) on %s%n", total, files.size(), sae, detectors.size(),
                engine.deviceLabel());
        ArrayDeque<Pending> window = new ArrayDeque<>();
        try (Chain in = new Chain(data)) {
            Optional<LabelledText> next = in.next();
            while (next.isPresent() || !window.isEmpty()) {
                while (next.isPresent() && window.size() < options.inFlight()) {
                    LabelledText text = next.get();
                    window.add(new Pending(text, engine.check(CheckRequest.ofText("eval-" + runId + "-" + text.index(), sae, text.text()))));
                    next = in.next();
                }
                Pending p = window.poll();
                LabelledText text = p.text();
                CheckResult result = await(p);
                ChunkOutcome outcome = result.outcome().orElseThrow();
                Map<String, Verdict> byDetector = new HashMap<>();
                outcome.verdicts().forEach(v -> byDetector.put(v.detector(), v));
                for (String d : detectors) {
                    Verdict v = byDetector.get(d);
                    if (v == null) {
                        throw new IllegalStateException(text.file() + ":" + text.line() + ": detector '" + d + "' gave no verdict");
                    }
                    scoreColumns.get(d)[text.index()] = v.score();
                    flaggedColumns.get(d)[text.index()] = v.action() != Action.ALLOW;
                }
                labels[text.index()] = text.label();
                groups[text.index()] = text.group().map(g -> groupIds.computeIfAbsent(g, k -> {
                    groupNames.add(k);
                    return groupNames.size() - 1;
                })).orElse(-1);
                int tokens = result.codes().tokens();
                atMax += tokens >= maxTokens ? 1 : 0;
                if (scores.isPresent()) {
                    scores.get().write(scoresLine(text, tokens, outcome));
                }
                done++;
                long now = System.nanoTime();
                if (now - lastProgress > PROGRESS_NANOS) {
                    lastProgress = now;
                    progress.printf("eval: %d/%d texts (%.1f texts/s)%n", done, total, done / ((now - t0) / 1e9));
                }
            }
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        progress.printf("eval: %d/%d texts in %.1f s (%.1f texts/s)%n", done, total, seconds, done / Math.max(seconds, 1e-9));
        return new Outcome(sae, List.copyOf(detectors), skipped, scoreColumns, flaggedColumns, labels, groups, List.copyOf(groupNames),
                List.copyOf(files), maxTokens, atMax, seconds);
    }

    private CheckResult await(Pending p) throws InterruptedException {
        try {
            return p.result().get(options.checkTimeout().toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause() == null ? e : e.getCause();
            throw new IllegalStateException(p.text().file() + ":" + p.text().line() + ": the check failed: " + cause.getMessage(), cause);
        } catch (TimeoutException e) {
            throw new IllegalStateException(p.text().file() + ":" + p.text().line() + ": no answer from the engine within "
                    + options.checkTimeout().toSeconds() + " s", e);
        }
    }

    /** The texts of several files in order, indexed from 0 across them. */
    private static final class Chain implements AutoCloseable {
        private final List<Path> files;
        private int file;
        private int nextIndex;
        private Optional<LabelledTextReader> reader = Optional.empty();

        Chain(List<Path> files) {
            this.files = files;
        }

        Optional<LabelledText> next() {
            while (true) {
                if (reader.isEmpty()) {
                    if (file == files.size()) {
                        return Optional.empty();
                    }
                    reader = Optional.of(LabelledTextReader.open(files.get(file++), nextIndex));
                }
                Optional<LabelledText> t = reader.get().next();
                if (t.isPresent()) {
                    nextIndex = t.get().index() + 1;
                    return t;
                }
                reader.get().close();
                reader = Optional.empty();
            }
        }

        @Override
        public void close() {
            reader.ifPresent(LabelledTextReader::close);
        }
    }

    /**
     * One line of the scores file: {@code {"index", "file", "line", "label", "group"?, "tokens", "decision": {"action",
     * "detector"?, "score"?}, "verdicts": [...], "text"?}}, the verdicts as {@code POST /v1/check} gives them.
     */
    private String scoresLine(LabelledText text, int tokens, ChunkOutcome outcome) {
        ObjectNode o = JSON.createObjectNode();
        o.put("index", text.index()).put("file", text.file().toString()).put("line", text.line()).put("label", text.label());
        text.group().ifPresent(g -> o.put("group", g));
        o.put("tokens", tokens);
        Decision d = outcome.decision();
        ObjectNode decision = o.putObject("decision").put("action", d.action().wireName());
        d.detector().ifPresent(id -> decision.put("detector", id));
        d.score().ifPresent(s -> decision.put("score", s));
        o.set("verdicts", VerdictsJson.of(outcome.verdicts()));
        if (options.scoresText()) {
            o.put("text", text.text());
        }
        return o.toString() + "\n";
    }
}
