package io.saeguard.sidecar.pipeline;

import io.saeguard.detectors.DetectorDefinition;
import io.saeguard.detectors.RequestSnapshot;
import io.saeguard.detectors.StateLimits;
import io.saeguard.sae.Sae;
import io.saeguard.sae.engine.EngineOptions;
import io.saeguard.sae.engine.SaeEngine;
import io.saeguard.sidecar.config.SidecarConfig;
import io.saeguard.sidecar.metrics.FeatureStats;
import io.saeguard.sidecar.metrics.FvuSampler;
import io.saeguard.sidecar.metrics.Metrics;
import io.saeguard.sidecar.metrics.SampleFraction;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.DoubleSupplier;
import java.util.function.Supplier;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.utils.Time;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The engine thread: it owns the SAE engine (DJL), every loaded SAE, the prompt model and the detectors, and is the
 * only thread that touches them (their threading contract). Other threads talk to it through a queue of tasks
 * ({@link #submit}, {@link #submitPrompt}, {@link #check}, {@link #encode}, {@link #replaceDetector}, {@link #forget});
 * it dispatches each and runs what is due:
 * <ul>
 *   <li>{@link PromptStage}: prompt events through the prompt model, into records' {@link Work};
 *   <li>{@link TokenBatcher}: per SAE, a batch is encoded when it holds {@code max_batch_tokens} tokens or
 *       {@code max_delay} after its first token arrived; HTTP checks join the batches like records;
 *   <li>{@link EncodeStage}: the encode, then {@link ChunkEvaluator} per chunk of the batch; records' outcomes go to
 *       the egress executor (decisions and alerts to Kafka), HTTP checks' complete their futures; then
 *       {@link FeatureStats} and the {@link FvuSampler} per SAE;
 *   <li>{@link LiveDetectors}: the detectors, replaced by an explicit task after what was queued before it was decided.
 * </ul>
 * Read-only views for other threads ({@link #featureStats}, {@link #watchedFeatures}, {@link #featureLabels},
 * {@link #detectorDefinitions}) are immutable snapshots, replaced when a detector changes.
 */
public final class EngineLoop implements AutoCloseable, EngineIntake {
    private static final Logger LOGGER = LoggerFactory.getLogger(EngineLoop.class);
    private static final long IDLE_WAIT_NANOS = TimeUnit.MILLISECONDS.toNanos(100);
    private static final long EVICTION_INTERVAL_NANOS = TimeUnit.SECONDS.toNanos(5);

    private final SidecarConfig config;
    private final Map<String, Sae> saes;
    private final EngineOptions engineOptions;
    private final List<DetectorDefinition> initialDefinitions;
    private final StateLimits limits;
    private final EngineOutputs outputs;
    private final Metrics metrics;
    private final Generation generation;
    private final Time time;
    private final BlockingQueue<EngineTask> queue = new LinkedBlockingQueue<>();
    private final Thread thread;
    private Optional<MetricsEncoder> metricsEncoder = Optional.empty(); // the engine thread's
    private final CountDownLatch started = new CountDownLatch(1);
    private final Map<String, FeatureStats> featureStats = new LinkedHashMap<>();
    private volatile Throwable startFailure;
    private volatile String deviceLabel = "cpu";
    private volatile int promptModelWidth = -1;
    private volatile LiveDetectors detectors;

    // Engine thread only, from here on.
    private final TokenBatcher<ChunkInput> batcher;
    private EngineResources resources;
    private Optional<PromptStage> prompts = Optional.empty();
    private EncodeStage stage;
    private JudgeCascade judge;
    private DoubleSupplier machineLoad = SampleFraction.machineCpuLoad();

    /**
     * @param saes the SAEs to load (by id), already read from their files
     * @param definitions the detectors at start (each validated by {@link LiveDetectors#check})
     */
    EngineLoop(SidecarConfig config, Map<String, Sae> saes, List<DetectorDefinition> definitions, EngineOptions engineOptions,
            EngineOutputs outputs, Metrics metrics, Generation generation, Time time) {
        this.config = config;
        this.saes = new LinkedHashMap<>(saes);
        this.engineOptions = engineOptions;
        this.initialDefinitions = List.copyOf(definitions);
        this.limits = new StateLimits(config.state().requestTtl(), config.state().maxRequests());
        this.outputs = outputs;
        this.metrics = metrics;
        this.generation = generation;
        this.time = time;
        SidecarConfig.MetricsSettings ms = config.metrics();
        for (Map.Entry<String, Sae> e : this.saes.entrySet()) {
            FeatureStats stats = new FeatureStats(e.getKey(), e.getValue().config().dSae(), e.getValue().baselineDensity(),
                    ms.halfLifeTokens(), ms.deadWindowTokens(), ms.calibrationTokens());
            featureStats.put(e.getKey(), stats);
        }
        this.batcher = new TokenBatcher<>(config.batching().maxBatchTokens(), config.batching().maxDelay().toNanos(), ChunkInput::tokens);
        this.thread = new Thread(this::run, "saeguard-engine");
    }

    /** Starts the engine thread and waits until every SAE is on the device (or loading failed). */
    void start(Duration timeout) throws InterruptedException {
        thread.start();
        if (!started.await(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            throw new IllegalStateException("the SAE engine did not start within " + timeout);
        }
        if (startFailure != null) {
            throw new IllegalStateException("the SAE engine failed to start: " + startFailure.getMessage(), startFailure);
        }
    }

    @Override
    public void submit(Work work) {
        queue.add(new EngineTask.Encode(work));
    }

    @Override
    public void submitPrompt(PromptWork work) {
        queue.add(new EngineTask.Prompt(work));
    }

    @Override
    public void submitVerdict(VerdictWork work) {
        queue.add(new EngineTask.Verdict(work));
    }

    @Override
    public void pollEnd() {
        if (config.batching().flushOnIdle()) {
            queue.add(EngineTask.PollEnd.INSTANCE);
        }
    }

    @Override
    public void forget(Set<TopicPartition> partitions) {
        queue.add(new EngineTask.Forget(Set.copyOf(partitions)));
    }

    @Override
    public void restore(TopicPartition partition, List<RequestSnapshot> snapshots) {
        queue.add(new EngineTask.Restore(partition, List.copyOf(snapshots)));
    }

    /**
     * Decides a chunk as the stream would (the same batch, encode and detectors; the request's state is read and
     * updated), publishing nothing. Completes with the codes and the outcome.
     *
     * @throws InvalidRequestException (now) for an SAE this sidecar does not load, a wrong width or a non-finite value,
     *     or a text when the sidecar has no prompt model
     */
    public CompletableFuture<CheckResult> check(CheckRequest request) {
        return queueCheck(request, true);
    }

    /** Like {@link #check} but only encodes: completes with the codes, no detector sees them. */
    public CompletableFuture<CheckResult> encode(CheckRequest request) {
        return queueCheck(request, false);
    }

    private CompletableFuture<CheckResult> queueCheck(CheckRequest request, boolean decide) {
        Sae sae = saes.get(request.sae());
        if (sae == null) {
            throw new InvalidRequestException("unknown SAE id '" + request.sae() + "' (loaded: " + String.join(", ", saes.keySet()) + ")");
        }
        CompletableFuture<CheckResult> result = new CompletableFuture<>();
        if (request.text().isPresent()) {
            if (promptModelWidth < 0) {
                throw new InvalidRequestException("this sidecar has no prompt model ('prompts:' in its config), so it cannot check text");
            }
            queue.add(new EngineTask.CheckText(request, decide, result));
        } else {
            queue.add(new EngineTask.Check(HttpCheck.of(request, sae.config().dIn(), decide, time.milliseconds(), result)));
        }
        return result;
    }

    /**
     * Refuses, on any thread, a definition this sidecar cannot run, as {@link #replaceDetector} would: unverified and not
     * allowed, an SAE it does not load, a rule that does not compile, a feature id at or above the SAE's {@code d_sae}.
     *
     * @throws InvalidRequestException naming the detector and what is wrong
     */
    public void validate(DetectorDefinition definition) {
        try {
            Pipeline.checkAllowed(definition, config);
        } catch (IllegalArgumentException e) {
            throw new InvalidRequestException(e.getMessage(), e);
        }
        LiveDetectors.check(definition, saes, limits);
    }

    /**
     * Replaces (or adds) a detector, after the records queued before it were decided by the old version. Completes
     * with whether one with its id existed; completes exceptionally with {@link InvalidRequestException} for a
     * definition this sidecar cannot run (the running version stays in force), or with an {@link IllegalStateException}
     * when the detector is in force but its steering vectors could not be published.
     */
    public CompletableFuture<Boolean> replaceDetector(DetectorDefinition definition) {
        CompletableFuture<Boolean> replaced = new CompletableFuture<>();
        queue.add(new EngineTask.ReplaceDetector(definition, replaced));
        return replaced;
    }

    /**
     * Removes a detector, after the records queued before it were decided with it. Completes with whether one with
     * that id existed (removing an unknown id changes nothing).
     */
    public CompletableFuture<Boolean> removeDetector(String id) {
        CompletableFuture<Boolean> removed = new CompletableFuture<>();
        queue.add(new EngineTask.RemoveDetector(id, removed));
        return removed;
    }

    /**
     * Runs {@code body} on the engine thread once everything queued before it was decided: a barrier, and a way for
     * tests to hold the engine still.
     */
    @SuppressWarnings("unchecked")
    <T> CompletableFuture<T> call(Supplier<T> body) {
        CompletableFuture<Object> f = new CompletableFuture<>();
        queue.add(new EngineTask.Barrier(body::get, f));
        return (CompletableFuture<T>) f;
    }

    /** Tasks waiting for the engine thread. */
    public int queued() {
        return queue.size();
    }

    /** The device label, e.g. {@code cpu}. */
    public String deviceLabel() {
        return deviceLabel;
    }

    /** The prompt model's hidden size, once the engine started with one; -1 without. */
    int promptModelWidth() {
        return promptModelWidth;
    }

    /** Per-SAE feature statistics, for the metrics exporter (thread-safe objects). */
    public List<FeatureStats> featureStats() {
        return List.copyOf(featureStats.values());
    }

    /** Labels the running detectors give their features, per SAE (a snapshot, safe to read from any thread). */
    public Map<String, Map<Integer, String>> featureLabels() {
        return detectors.labels();
    }

    /** Features named by the running detectors plus {@code metrics.watch}, per SAE (a snapshot, safe to read from any thread). */
    public Map<String, Set<Integer>> watchedFeatures() {
        return detectors.watched();
    }

    /** The running detectors' definitions in evaluation order (a snapshot, safe to read from any thread). */
    public List<DetectorDefinition> detectorDefinitions() {
        return detectors.definitions();
    }

    /** The steering vectors of the running detectors (a snapshot, safe to read from any thread). */
    Map<String, float[]> steeringVectors() {
        return detectors.steeringVectors();
    }

    private void run() {
        try {
            startOnThread();
        } catch (Throwable t) {
            startFailure = t;
            started.countDown();
            closeOnThread();
            return;
        }
        started.countDown();
        long lastEviction = time.nanoseconds();
        try {
            while (true) {
                long now = time.nanoseconds();
                long next = Math.min(batcher.nextDeadlineNanos(), prompts.map(PromptStage::deadlineNanos).orElse(Long.MAX_VALUE));
                long wait = next == Long.MAX_VALUE ? IDLE_WAIT_NANOS : Math.min(next - now, IDLE_WAIT_NANOS);
                EngineTask task = wait <= 0 ? queue.poll() : queue.poll(wait, TimeUnit.NANOSECONDS);
                if (task instanceof EngineTask.Stop) {
                    flushAll();
                    break;
                }
                if (task == null && batcher.isEmpty() && prompts.map(PromptStage::isEmpty).orElse(true)) {
                    stage.reconstructIdleFvu();
                } else if (task != null) {
                    dispatch(task);
                }
                now = time.nanoseconds();
                runDue(now);
                fallBack();
                if (now - lastEviction > EVICTION_INTERVAL_NANOS) {
                    detectors.engine().evictExpired(time.milliseconds());
                    lastEviction = now;
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            closeOnThread();
            LOGGER.info("engine thread stopped");
        }
    }

    /**
     * Tests: the full-code sample's encoder GEMM on the metrics encoder's thread ({@code f32} or {@code bf16}), or
     * {@code none} where there is no such thread (GPU, or no metric sampling); after {@link #start}.
     */
    String samplePrecision() {
        return metricsEncoder.map(MetricsEncoder::samplePrecision).orElse("none");
    }

    /** Tests: the machine CPU load the full-code sample's fraction follows ({@link SampleFraction}); before {@link #start}. */
    EngineLoop machineLoad(DoubleSupplier load) {
        this.machineLoad = load;
        return this;
    }

    private void startOnThread() throws Exception {
        resources = EngineResources.open(config, saes, engineOptions, metrics, time);
        deviceLabel = resources.deviceLabel();
        prompts = resources.prompts();
        prompts.ifPresent(p -> promptModelWidth = p.dModel());
        Map<String, int[]> special = new LinkedHashMap<>();
        config.saes().forEach(e -> special.put(e.id(), e.specialTokenIds().stream().mapToInt(Integer::intValue).sorted().toArray()));
        detectors = new LiveDetectors(initialDefinitions, saes, limits, config.metrics().watch());
        judge = new JudgeCascade(limits.maxRequests(), id -> detectors.engine().takeSeq(id));
        metricsEncoder = startMetricsEncoder();
        // The sample grows while the CPU has room only where its full encodes have a thread of their own (on the CPU).
        SampleFraction fraction = new SampleFraction(config.metrics().fullEncodeFraction(),
                metricsEncoder.isPresent() ? config.metrics().fullEncodeMaxFraction() : config.metrics().fullEncodeFraction(),
                machineLoad);
        stage = new EncodeStage(resources.loaded(), featureStats, config.metrics().fvuSampleRate(), fraction,
                new ChunkEvaluator(detectors.engine(), special), prompts, outputs, metrics, generation, time, limits.maxRequests(), deviceLabel, judge,
                metricsEncoder);
        stage.watch(detectors.watched());
    }

    /**
     * On the CPU, with any metric sampling on: the thread that runs the metrics' full encodes (the full-code sample and
     * the FVU reconstructions), so they never hold a decision back ({@link MetricsEncoder}).
     */
    private Optional<MetricsEncoder> startMetricsEncoder() throws Exception {
        if (config.metrics().fvuSampleRate() <= 0 && config.metrics().fullEncodeFraction() <= 0) {
            return Optional.empty();
        }
        Map<String, Sae> all = new LinkedHashMap<>();
        Map<String, Integer> maxActive = new LinkedHashMap<>();
        config.saes().forEach(e -> {
            all.put(e.id(), saes.get(e.id()));
            maxActive.put(e.id(), e.maxActive());
        });
        // Only SAEs on the watched-feature encode have a full-code sample; with BF16 it gets an encoder of its own.
        Set<String> bf16Sample = new java.util.LinkedHashSet<>();
        if (config.metrics().fullEncodeFraction() > 0 && sampleInBf16(config.metrics().samplePrecision())) {
            resources.loaded().forEach((id, sae) -> {
                if (sae.encodesWatchedAlone()) {
                    bf16Sample.add(id);
                }
            });
        }
        return MetricsEncoder.start(engineOptions, deviceLabel.equals("cpu"), all, maxActive, bf16Sample, Duration.ofMinutes(5));
    }

    /** {@code metrics.sample_precision}: {@code auto} is BF16 where this CPU runs it natively. */
    private static boolean sampleInBf16(SidecarConfig.MetricsSettings.SamplePrecision precision) {
        return switch (precision) {
            case BF16 -> true;
            case F32 -> false;
            case AUTO -> SaeEngine.cpuHasNativeBf16();
        };
    }

    private void closeOnThread() {
        metricsEncoder.ifPresent(MetricsEncoder::close);
        if (resources != null) {
            resources.close();
        }
    }

    private void dispatch(EngineTask task) {
        long now = time.nanoseconds();
        if (task instanceof EngineTask.Encode e) {
            add(e.work(), now);
        } else if (task instanceof EngineTask.Prompt p) {
            if (prompts.orElseThrow().add(p.work(), now)) {
                runPrompts();
            }
        } else if (task instanceof EngineTask.Check c) {
            add(c.check(), now);
        } else if (task instanceof EngineTask.CheckText t) {
            checkText(t, now);
        } else if (task instanceof EngineTask.ReplaceDetector r) {
            replace(r.definition(), r.replaced());
        } else if (task instanceof EngineTask.RemoveDetector r) {
            flushAll(); // what was queued before the removal is decided with the detector
            boolean removed = detectors.remove(r.id());
            stage.watch(detectors.watched());
            r.removed().complete(removed);
        } else if (task instanceof EngineTask.Verdict v) {
            verdict(v.work());
        } else if (task instanceof EngineTask.PollEnd) {
            if (queue.isEmpty()) {
                // Nothing more to batch with: waiting for max_delay would only hold the decisions back. Under load the queue
                // is not empty here and batches fill as before.
                flushAll();
            } else {
                // The next poll's records came before this poll's were encoded: a backlog, as a batch filling before its
                // max delay is (with flushes at each poll end a batch may never fill while Kafka has a backlog).
                stage.backlogged();
            }
        } else if (task instanceof EngineTask.Forget f) {
            flushAll(); // decide what was queued before the revocation with the state it had
            stage.forget(f.partitions());
        } else if (task instanceof EngineTask.Restore r) {
            stage.restore(r.partition(), r.snapshots());
        } else if (task instanceof EngineTask.Barrier b) {
            flushAll(); // keep per-request order: earlier records first
            try {
                b.result().complete(b.body().get());
            } catch (RuntimeException e) {
                b.result().completeExceptionally(e);
            }
        } else {
            throw new IllegalStateException("unexpected task " + task);
        }
    }

    /**
     * A judge's verdict: the request's next decision through the egress, in the engine's order, or a dead letter when no
     * escalation of the request is pending here (docs/architecture.md#judge-cascade).
     */
    private void verdict(VerdictWork w) {
        if (generation.stale(w.generation())) {
            return; // consumed again since the last recovery
        }
        JudgeCascade.Outcome outcome = judge.verdict(w.verdict(), time.milliseconds());
        if (outcome instanceof JudgeCascade.Outcome.Decided d) {
            outputs.egress().execute(() -> outputs.decisions().publishJudged(w.source(), d.decision(), Metrics.JUDGE_VERDICT,
                    w.record().timestamp(), d.replyPartition()));
        } else if (outcome instanceof JudgeCascade.Outcome.Refused r) {
            outputs.deadLetters().send(w.record(), w.source(), r.reason(), new IllegalStateException(r.why()));
        }
    }

    /**
     * Each escalation past its {@code judge_timeout_ms} gets its band's fallback as the request's next decision. Checked on
     * every turn of the loop, so at most the idle wait (100 ms) late.
     */
    private void fallBack() {
        long nowMs = time.milliseconds();
        for (JudgeCascade.Fallback f : judge.expire(nowMs)) {
            Source source = new Source(f.partition(), Source.NO_OFFSET, generation.current(), 0);
            outputs.egress().execute(() -> outputs.decisions().publishJudged(source, f.decision(), Metrics.JUDGE_FALLBACK, nowMs,
                    f.replyPartition()));
        }
    }

    private void add(ChunkInput input, long now) {
        batcher.add(input.sae(), input, now).ifPresent(b -> {
            stage.backlogged(); // full before its max delay: records arrive faster than the engine takes them
            stage.run(b);
        });
    }

    private void runDue(long now) {
        if (prompts.isPresent() && prompts.get().due(now)) {
            runPrompts();
        }
        for (TokenBatcher.Batch<ChunkInput> b : batcher.due(now)) {
            stage.run(b);
        }
    }

    private void flushAll() {
        if (prompts.isPresent() && !prompts.get().isEmpty()) {
            runPrompts();
        }
        for (TokenBatcher.Batch<ChunkInput> b : batcher.drainAll()) {
            stage.run(b);
        }
    }

    private void runPrompts() {
        long now = time.nanoseconds();
        for (Work w : prompts.orElseThrow().run(generation, outputs.deadLetters())) {
            add(w, now);
        }
    }

    /** A text check: the prompt model now (as a prompt event would get it), then the SAE's batch like any chunk. */
    private void checkText(EngineTask.CheckText t, long now) {
        try {
            add(prompts.orElseThrow().textCheck(t.request(), t.decide(), time.milliseconds(), t.result()), now);
        } catch (RuntimeException e) {
            t.result().completeExceptionally(e);
        }
    }

    private void replace(DetectorDefinition def, CompletableFuture<Boolean> replaced) {
        try {
            validate(def); // refused before anything changes
            flushAll(); // what was queued before the change is decided by the version it was queued under
            boolean existed = detectors.replace(def);
            stage.watch(detectors.watched()); // a detector added at run time widens the encoded features before the next batch
            try {
                outputs.steering().accept(detectors.steeringVectors()); // before any decision can name a new one
            } catch (RuntimeException e) {
                LOGGER.atError().log("detectors reloaded, but their steering vectors were not published: {}", e.getMessage());
                throw new IllegalStateException("the detector is in force, but its steering vectors were not published (retried at the "
                        + "next reload): " + e.getMessage(), e);
            }
            replaced.complete(existed);
        } catch (RuntimeException e) {
            replaced.completeExceptionally(e);
        }
    }

    /** Flushes what is queued, stops the thread and frees the device; waits up to {@code timeout}. */
    void stop(Duration timeout) throws InterruptedException {
        queue.add(new EngineTask.Stop());
        thread.join(timeout.toMillis());
    }

    @Override
    public void close() throws InterruptedException {
        if (thread.isAlive()) {
            stop(Duration.ofSeconds(30));
        }
    }
}
