package io.saeguard.sidecar.pipeline;

import io.saeguard.sae.lm.HiddenStateModel;
import io.saeguard.sidecar.config.SidecarConfig;
import io.saeguard.sidecar.metrics.Metrics;
import io.saeguard.topics.events.Alert;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import org.apache.kafka.common.utils.Time;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Prompt events through the prompt model: batches waiting events (up to {@code prompts.max_batch_prompts}, or
 * {@code batching.max_delay} after the first), runs them in one padded call, and turns each one's hidden states into a
 * {@link Work} for its SAE, in memory: a whole request at position 0, final, with the tokenizer's special tokens marked
 * and the text kept for alert excerpts. A model failure dead-letters the batch's events (stage {@code model}); a
 * non-finite hidden state dead-letters its event.
 *
 * <p>Not thread-safe: the engine thread owns it and the model.
 */
final class PromptStage implements AutoCloseable {
    private static final Logger LOGGER = LoggerFactory.getLogger(PromptStage.class);

    private final SidecarConfig.Prompts settings;
    private final HiddenStateModel model;
    private final long maxDelayNanos;
    private final Metrics metrics;
    private final Time time;
    private final List<PromptWork> waiting = new ArrayList<>();
    private long deadlineNanos;

    private PromptStage(SidecarConfig.Prompts settings, HiddenStateModel model, long maxDelayNanos, Metrics metrics, Time time) {
        this.settings = settings;
        this.model = model;
        this.maxDelayNanos = maxDelayNanos;
        this.metrics = metrics;
        this.time = time;
    }

    /** Opens the prompt model (on the engine thread: the model is its to use). */
    static PromptStage open(SidecarConfig.Prompts settings, Path cacheDir, long maxDelayNanos, Metrics metrics, Time time) throws Exception {
        HiddenStateModel model = HiddenStateModel.open(settings.model(), settings.tokenizer().orElse(null), settings.maxTokens(), cacheDir);
        return new PromptStage(Objects.requireNonNull(settings, "settings"), model, maxDelayNanos, metrics, time);
    }

    /** The model's hidden size. */
    int dModel() {
        return model.dModel();
    }

    /** Queues an event; returns whether the batch is full (run it). */
    boolean add(PromptWork work, long nowNanos) {
        if (waiting.isEmpty()) {
            deadlineNanos = nowNanos + maxDelayNanos;
        }
        waiting.add(work);
        return waiting.size() >= settings.maxBatchPrompts();
    }

    /** Whether events wait past their deadline at {@code nowNanos}. */
    boolean due(long nowNanos) {
        return !waiting.isEmpty() && nowNanos - deadlineNanos >= 0;
    }

    /** When the waiting batch is due, or {@link Long#MAX_VALUE} when nothing waits. */
    long deadlineNanos() {
        return waiting.isEmpty() ? Long.MAX_VALUE : deadlineNanos;
    }

    boolean isEmpty() {
        return waiting.isEmpty();
    }

    /**
     * Runs the waiting events (those of a stale generation are dropped) and returns one {@link Work} per event whose
     * hidden states are usable, in arrival order; the others were dead-lettered.
     */
    List<Work> run(Generation generation, DeadLetterPublisher deadLetters) {
        List<PromptWork> works = new ArrayList<>(waiting);
        waiting.clear();
        works.removeIf(w -> generation.stale(w.generation()));
        if (works.isEmpty()) {
            return List.of();
        }
        List<HiddenStateModel.Result> results;
        try {
            results = run(works.stream().map(w -> w.event().text()).toList());
        } catch (RuntimeException e) {
            LOGGER.atError().addKeyValue("prompts", works.size()).log("prompt model failed: {}", e.toString());
            for (PromptWork w : works) {
                deadLetters.send(w.record(), w.source(), FailureReason.MODEL_ERROR, e);
            }
            return List.of();
        }
        List<Work> out = new ArrayList<>(works.size());
        for (int i = 0; i < works.size(); i++) {
            PromptWork w = works.get(i);
            HiddenStateModel.Result r = results.get(i);
            if (r.droppedTokens() > 0) {
                metrics.promptTokensTruncated.inc(r.droppedTokens());
            }
            float[] norms = TokenNorms.ofFinite(r.rows(), r.tokens(), r.dModel());
            if (norms == null) {
                deadLetters.send(w.record(), w.source(), FailureReason.MODEL_NON_FINITE,
                        new IllegalStateException("the prompt model produced a non-finite hidden state"));
                continue;
            }
            out.add(new Work(w.record(), w.generation(), w.event().requestId(), 0, r.tokens(), true, Optional.of(r.intIds()),
                    Optional.of(r.special()), w.sae(), Activations.of(r.rows()), norms, w.counted(), Optional.of(new Work.PromptText(w.event().text(), r)),
                    w.receivedMs(), w.event().replyPartition()));
        }
        return out;
    }

    /**
     * A text check through the model now, as a whole request (position 0, final) with the tokenizer's special tokens
     * marked, ready to join its SAE's batch; timed like the batches.
     *
     * @throws IllegalStateException when the model produced a non-finite hidden state
     */
    HttpCheck textCheck(CheckRequest request, boolean decide, long nowMs, java.util.concurrent.CompletableFuture<CheckResult> result) {
        HiddenStateModel.Result h = run(List.of(request.text().orElseThrow())).get(0);
        float[] norms = TokenNorms.ofFinite(h.rows(), h.tokens(), h.dModel());
        if (norms == null) {
            throw new IllegalStateException("the prompt model produced a non-finite hidden state");
        }
        return new HttpCheck(request.requestId(), request.sae(), 0, h.tokens(), Activations.of(h.rows()), norms, Optional.of(h.intIds()),
                Optional.of(h.special()), true, nowMs, decide, result);
    }

    /** Runs texts through the model, timed ({@code saeguard_prompt_model_seconds}, the engine's {@code prompt_model} part). */
    private List<HiddenStateModel.Result> run(List<String> texts) {
        long t0 = time.nanoseconds();
        List<HiddenStateModel.Result> results = model.run(texts);
        long nanos = time.nanoseconds() - t0;
        metrics.promptModelSeconds.observe(nanos / 1e9);
        metrics.engineBusyParts.get(Metrics.PART_PROMPT_MODEL).inc(nanos / 1e9);
        return results;
    }

    /** A prompt event's alerts with the text around the tokens where each detector fired (when {@code prompts.excerpts}). */
    List<Alert> withExcerpts(Work.PromptText p, List<Alert> alerts) {
        if (alerts.isEmpty() || !settings.excerpts()) {
            return alerts;
        }
        int context = settings.excerptContextChars();
        List<Alert> out = new ArrayList<>(alerts.size());
        for (Alert a : alerts) {
            if (a.positions().isEmpty()) {
                out.add(a);
                continue;
            }
            long first = a.positions().stream().mapToLong(Long::longValue).min().orElseThrow();
            long last = a.positions().stream().mapToLong(Long::longValue).max().orElseThrow();
            HiddenStateModel.Excerpt excerpt = p.tokens().excerpt(p.text(), (int) first, (int) last + 1, a.positions(), context,
                    4 * context + 200);
            out.add(excerpt.text().isEmpty() ? a : new Alert(a.decision(), a.features(), a.positions(), Optional.of(excerpt.text()),
                    excerpt.highlights(), a.hook(), a.model(), a.sae()));
        }
        return out;
    }

    @Override
    public void close() {
        model.close();
    }
}
