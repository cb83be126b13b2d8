package io.saeguard.sidecar.pipeline;

import io.saeguard.detectors.Chunk;
import io.saeguard.detectors.ChunkOutcome;
import io.saeguard.detectors.DecoderDirections;
import io.saeguard.detectors.DetectorDefinition;
import io.saeguard.detectors.DetectorEngine;
import io.saeguard.detectors.StateLimits;
import io.saeguard.sae.Sae;
import io.saeguard.sae.SaeInputException;
import io.saeguard.sae.engine.DeviceSae;
import io.saeguard.sae.engine.EngineOptions;
import io.saeguard.sae.engine.SaeEngine;
import io.saeguard.sae.lm.HiddenStateModel;
import io.saeguard.sidecar.config.SidecarConfig;
import io.saeguard.sidecar.metrics.Metrics;
import io.saeguard.topics.DecodeException;
import io.saeguard.topics.activation.ActivationChunk;
import io.saeguard.topics.activation.ActivationCodec;
import io.saeguard.topics.codes.SparseCodes;
import io.saeguard.topics.events.Phase;
import io.saeguard.topics.safetensors.DType;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
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
import java.util.concurrent.Executor;
import java.util.function.Consumer;
import java.util.function.Function;
import org.apache.kafka.common.TopicPartition;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The engine thread: it owns the SAE engine (DJL), every loaded SAE and the detector engine, and is
 * the only thread that touches them (their threading contract). It micro-batches records like an
 * inference server: per SAE, a batch is encoded when it holds {@code max_batch_tokens} tokens or
 * {@code max_delay} after its first token arrived, whichever comes first. Each record's share of the
 * codes goes through the detectors, and its decision and alerts are published.
 *
 * <p>Other threads talk to it only through {@link #submit} and {@link #call} (a queue).
 */
public final class EngineLoop implements AutoCloseable, EngineIntake {
    private static final Logger LOGGER = LoggerFactory.getLogger(EngineLoop.class);

    /** Something for the engine thread to do. */
    private sealed interface Task permits Encode, Call, Forget, Stop, Prompt {
    }

    private record Encode(Work work) implements Task {
    }

    private record Call(Function<Context, Object> body, CompletableFuture<Object> result) implements Task {
    }

    private record Forget(Set<TopicPartition> partitions) implements Task {
    }

    private record Stop() implements Task {
    }

    private record Prompt(PromptWork work) implements Task {
    }

    /** What engine-thread code (HTTP handlers' bodies) may use. Valid only on the engine thread. */
    public interface Context {
        DeviceSae sae(String id);

        DetectorEngine detectors();

        SaeEngine engine();

        /** The SAE's configured special token ids, sorted (possibly empty). */
        int[] specialTokenIds(String sae);

        /**
         * Runs one text through the prompt model (HTTP text checks).
         *
         * @throws IllegalArgumentException if this sidecar has no prompt model
         */
        HiddenStateModel.Result promptHiddenStates(String text);
    }

    private static final class Batch {
        final List<Work> works = new ArrayList<>();
        int tokens;
        long deadlineNanos;
    }

    private final SidecarConfig.Batching batching;
    private final Map<String, Sae> saes;
    private final Map<String, Integer> maxActive;
    private final Map<String, int[]> specialTokenIds; // per SAE, sorted
    private final EngineOptions engineOptions;
    private final List<DetectorDefinition> detectorDefinitions;
    private final StateLimits limits;
    private final DecisionPublisher decisions;
    private final Executor egress;
    private final DeadLetterPublisher deadLetters;
    private final Metrics metrics;
    private final BlockingQueue<Task> queue = new LinkedBlockingQueue<>();
    private final Thread thread;
    private final CountDownLatch started = new CountDownLatch(1);
    private final Map<String, TopicPartition> requestPartitions;
    private final Map<String, io.saeguard.sidecar.metrics.FeatureStats> featureStats = new LinkedHashMap<>();
    private final java.util.Random sampler = new java.util.Random();
    private volatile Map<String, Set<Integer>> watched = Map.of();
    private volatile Map<String, Map<Integer, String>> labels = Map.of();
    private volatile Throwable startFailure;
    private volatile DetectorEngine detectorEngine;
    private volatile String deviceLabel = "cpu";
    private final Generation generation;
    private final SidecarConfig.MetricsSettings metricsSettings;
    private final Optional<SidecarConfig.Prompts> promptSettings;
    private final List<PromptWork> prompts = new ArrayList<>();
    private float[] batchBuffer = new float[0]; // engine thread only
    private long promptDeadlineNanos;
    private HiddenStateModel promptModel; // engine thread only
    private final Consumer<Map<String, float[]>> steering;
    private long detectorsRevision; // engine thread only
    private volatile int promptModelWidth = -1;

    EngineLoop(SidecarConfig.Batching batching, Map<String, Sae> saes, Map<String, Integer> maxActive, Map<String, int[]> specialTokenIds,
            EngineOptions engineOptions,
            List<DetectorDefinition> detectorDefinitions, StateLimits limits, DecisionPublisher decisions, DeadLetterPublisher deadLetters,
            Metrics metrics, Generation generation, SidecarConfig.MetricsSettings metricsSettings,
            Optional<SidecarConfig.Prompts> promptSettings, Consumer<Map<String, float[]>> steering, Executor egress) {
        this.egress = egress;
        this.steering = steering;
        this.generation = generation;
        this.promptSettings = promptSettings;
        this.metricsSettings = metricsSettings;
        this.batching = batching;
        this.saes = new LinkedHashMap<>(saes);
        this.maxActive = Map.copyOf(maxActive);
        this.specialTokenIds = Map.copyOf(specialTokenIds);
        this.engineOptions = engineOptions;
        this.detectorDefinitions = List.copyOf(detectorDefinitions);
        this.limits = limits;
        this.decisions = decisions;
        this.deadLetters = deadLetters;
        this.metrics = metrics;
        for (Map.Entry<String, Sae> e : this.saes.entrySet()) {
            featureStats.put(e.getKey(), new io.saeguard.sidecar.metrics.FeatureStats(e.getKey(), e.getValue().config().dSae(),
                    e.getValue().baselineDensity(), metricsSettings.halfLifeTokens(), metricsSettings.deadWindowTokens(),
                    metricsSettings.calibrationTokens()));
        }
        this.thread = new Thread(this::run, "saeguard-engine");
        int cap = limits.maxRequests();
        // Which partition each tracked request came from, to drop state on revoke; bounded like the state itself.
        this.requestPartitions = new LinkedHashMap<>(16, 0.75f, true) {
            private static final long serialVersionUID = 1L;

            @Override
            protected boolean removeEldestEntry(Map.Entry<String, TopicPartition> eldest) {
                return size() > cap;
            }
        };
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

    /** Queues a record for encoding. */
    @Override
    public void submit(Work work) {
        queue.add(new Encode(work));
    }

    /** Queues a prompt event for the prompt model (then the SAE). */
    @Override
    public void submitPrompt(PromptWork work) {
        queue.add(new Prompt(work));
    }

    /** The prompt model's hidden size, once the engine started with one; -1 without. */
    int promptModelWidth() {
        return promptModelWidth;
    }

    /** Drops per-request detector state of requests last seen on these partitions (they were revoked). */
    @Override
    public void forget(Set<TopicPartition> partitions) {
        queue.add(new Forget(Set.copyOf(partitions)));
    }

    /** Runs {@code body} on the engine thread, after the records queued before it. */
    @SuppressWarnings("unchecked")
    public <T> CompletableFuture<T> call(Function<Context, T> body) {
        CompletableFuture<Object> f = new CompletableFuture<>();
        queue.add(new Call(c -> body.apply(c), f));
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

    private void run() {
        Map<String, DeviceSae> loaded = new LinkedHashMap<>();
        SaeEngine engine;
        try {
            engine = SaeEngine.start(engineOptions);
            deviceLabel = engine.deviceLabel();
            for (Map.Entry<String, Sae> e : saes.entrySet()) {
                long t0 = System.nanoTime();
                loaded.put(e.getKey(), engine.load(e.getValue(), maxActive.getOrDefault(e.getKey(), 256)));
                LOGGER.atInfo().addKeyValue("sae", e.getKey()).addKeyValue("dIn", e.getValue().config().dIn())
                        .addKeyValue("dSae", e.getValue().config().dSae()).addKeyValue("architecture", e.getValue().config().architecture().wireName())
                        .addKeyValue("device", engine.deviceLabel()).addKeyValue("ms", (System.nanoTime() - t0) / 1_000_000).log("SAE loaded");
            }
            detectorEngine = DetectorEngine.create(detectorDefinitions, directions(), limits);
            detectorsRevision = detectorEngine.revision(); // the sidecar publishes the first vectors itself, once started
            watched = watchList(detectorEngine.watchedFeatures());
            labels = detectorEngine.featureLabels();
            if (promptSettings.isPresent()) {
                SidecarConfig.Prompts ps = promptSettings.get();
                promptModel = HiddenStateModel.open(ps.model(), ps.tokenizer().orElse(null), ps.maxTokens(), engineOptions.cacheDir());
                promptModelWidth = promptModel.dModel();
            }
        } catch (Throwable t) {
            startFailure = t;
            started.countDown();
            return;
        }
        started.countDown();
        Context context = new Context() {
            @Override
            public DeviceSae sae(String id) {
                DeviceSae s = loaded.get(id);
                if (s == null) {
                    throw new IllegalArgumentException("unknown SAE id '" + id + "' (loaded: " + String.join(", ", loaded.keySet()) + ")");
                }
                return s;
            }

            @Override
            public DetectorEngine detectors() {
                return detectorEngine;
            }

            @Override
            public SaeEngine engine() {
                return engine;
            }

            @Override
            public int[] specialTokenIds(String sae) {
                return specialTokenIds.getOrDefault(sae, new int[0]);
            }

            @Override
            public HiddenStateModel.Result promptHiddenStates(String text) {
                if (promptModel == null) {
                    throw new IllegalArgumentException("this sidecar has no prompt model ('prompts:' in its config)");
                }
                return runPromptModel(List.of(text)).get(0);
            }
        };
        Map<String, Batch> batches = new LinkedHashMap<>();
        long lastEviction = System.nanoTime();
        try {
            while (true) {
                long wait = Math.min(nextDeadline(batches), prompts.isEmpty() ? Long.MAX_VALUE : promptDeadlineNanos) - System.nanoTime();
                Task task = wait <= 0 ? queue.poll() : queue.poll(Math.min(wait, TimeUnit.MILLISECONDS.toNanos(100)), TimeUnit.NANOSECONDS);
                if (task instanceof Stop) {
                    flushAll(batches, loaded);
                    break;
                }
                if (task == null && batches.values().stream().allMatch(b -> b.works.isEmpty()) && prompts.isEmpty()) {
                    long tFvu = System.nanoTime();
                    loaded.forEach((id, sae) -> { // idle: the FVU metric does not wait long for a full sample
                        FvuSamples pending = fvuSamples.get(id);
                        if (pending != null && pending.count > 0 && tFvu - pending.firstNanos >= FVU_IDLE_FLUSH_NANOS) {
                            reconstructForFvu(id, sae);
                        }
                    });
                    busy(Metrics.PART_FVU, System.nanoTime() - tFvu);
                }
                if (task instanceof Encode enc) {
                    enqueue(enc.work(), batches, loaded);
                } else if (task instanceof Prompt p) {
                    if (prompts.isEmpty()) {
                        promptDeadlineNanos = System.nanoTime() + batching.maxDelay().toNanos();
                    }
                    prompts.add(p.work());
                    if (prompts.size() >= promptSettings.orElseThrow().maxBatchPrompts()) {
                        runPrompts(batches, loaded);
                    }
                } else if (task instanceof Call call) {
                    flushAll(batches, loaded); // keep per-request order: earlier records first
                    Object out = null;
                    Throwable failed = null;
                    try {
                        out = call.body().apply(context);
                    } catch (Throwable t) {
                        failed = t;
                    }
                    if (detectorEngine.revision() != detectorsRevision) { // the call reloaded detectors
                        detectorsRevision = detectorEngine.revision();
                        watched = watchList(detectorEngine.watchedFeatures());
                        labels = detectorEngine.featureLabels();
                        try {
                            steering.accept(detectorEngine.steeringVectors()); // before any decision can name a new one
                        } catch (RuntimeException e) {
                            LOGGER.atError().log("detectors reloaded, but their steering vectors were not published: {}", e.getMessage());
                            failed = failed != null ? failed : new IllegalStateException("the detector is in force, but its steering "
                                    + "vectors were not published (retried at the next reload): " + e.getMessage(), e);
                        }
                    }
                    if (failed != null) {
                        call.result().completeExceptionally(failed);
                    } else {
                        call.result().complete(out);
                    }
                } else if (task instanceof Forget f) {
                    flushAll(batches, loaded);
                    detectorEngine.forgetRequests(r -> f.partitions().contains(requestPartitions.get(r)));
                    requestPartitions.values().removeIf(f.partitions()::contains);
                }
                long now = System.nanoTime();
                if (!prompts.isEmpty() && now >= promptDeadlineNanos) {
                    runPrompts(batches, loaded);
                }
                for (Map.Entry<String, Batch> e : batches.entrySet()) {
                    if (!e.getValue().works.isEmpty() && now >= e.getValue().deadlineNanos) {
                        flush(e.getKey(), e.getValue(), loaded);
                    }
                }
                if (now - lastEviction > TimeUnit.SECONDS.toNanos(5)) {
                    detectorEngine.evictExpired(System.currentTimeMillis());
                    lastEviction = now;
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            loaded.values().forEach(DeviceSae::close);
            if (promptModel != null) {
                promptModel.close();
            }
            engine.close();
            LOGGER.info("engine thread stopped");
        }
    }

    private DecoderDirections directions() {
        return new DecoderDirections() {
            @Override
            public int dIn(String sae) {
                return require(sae).config().dIn();
            }

            @Override
            public void direction(String sae, int feature, float[] dst) {
                require(sae).decoderRow(feature, dst);
            }

            private Sae require(String sae) {
                Sae s = saes.get(sae);
                if (s == null) {
                    throw new IllegalArgumentException("detectors name SAE '" + sae + "', which is not configured");
                }
                return s;
            }
        };
    }

    private static long nextDeadline(Map<String, Batch> batches) {
        long next = Long.MAX_VALUE;
        for (Batch b : batches.values()) {
            if (!b.works.isEmpty()) {
                next = Math.min(next, b.deadlineNanos);
            }
        }
        return next == Long.MAX_VALUE ? System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(100) : next;
    }

    private void enqueue(Work work, Map<String, Batch> batches, Map<String, DeviceSae> loaded) {
        Batch b = batches.computeIfAbsent(work.sae(), k -> new Batch());
        if (b.works.isEmpty()) {
            b.deadlineNanos = System.nanoTime() + batching.maxDelay().toNanos();
        }
        b.works.add(work);
        b.tokens += work.tokens();
        if (b.tokens >= batching.maxBatchTokens()) {
            flush(work.sae(), b, loaded);
        }
    }

    /**
     * Runs the waiting prompt events through the prompt model in one padded batch and queues each
     * one's hidden states for its SAE as a whole request (position 0, final). A model failure
     * dead-letters the prompts (stage {@code model}).
     */
    private void runPrompts(Map<String, Batch> batches, Map<String, DeviceSae> loaded) {
        List<PromptWork> works = new ArrayList<>(prompts);
        prompts.clear();
        works.removeIf(w -> generation.stale(w.generation()));
        if (works.isEmpty()) {
            return;
        }
        SidecarConfig.Prompts ps = promptSettings.orElseThrow();
        List<HiddenStateModel.Result> results;
        try {
            results = runPromptModel(works.stream().map(w -> w.event().text()).toList());
        } catch (RuntimeException e) {
            LOGGER.atError().addKeyValue("prompts", works.size()).log("prompt model failed: {}", e.toString());
            for (PromptWork w : works) {
                deadLetters.send(w.record(), w.source(), "model", "model_error", e);
            }
            return;
        }
        for (int i = 0; i < works.size(); i++) {
            PromptWork w = works.get(i);
            HiddenStateModel.Result r = results.get(i);
            if (r.droppedTokens() > 0) {
                metrics.promptTokensTruncated.inc(r.droppedTokens());
            }
            float[] norms = TokenNorms.ofFinite(r.rows(), r.tokens(), r.dModel());
            if (norms == null) {
                deadLetters.send(w.record(), w.source(), "model", "non_finite",
                        new IllegalStateException("the prompt model produced a non-finite hidden state"));
                continue;
            }
            ActivationChunk chunk;
            try {
                chunk = ActivationCodec.decode(ActivationCodec.builder(w.event().requestId()).model(ps.modelName()).hook(ps.hook())
                        .position(0).phase(w.event().phase().orElse(Phase.PROMPT)).isFinal(true)
                        .activations(DType.F32, r.tokens(), r.dModel(), r.rows()).tokenIds(r.intIds()).specialMask(r.special()).encode());
            } catch (DecodeException | RuntimeException e) {
                deadLetters.send(w.record(), w.source(), "model", "model_error", e);
                continue;
            }
            enqueue(new Work(w.record(), w.generation(), chunk, w.sae(), r.rows(), norms, w.counted(),
                    Optional.of(new Work.PromptText(w.event().text(), r)), w.receivedMs()), batches, loaded);
        }
    }

    /** Runs texts through the prompt model, timed ({@code saeguard_prompt_model_seconds}, the engine's {@code prompt_model} part). */
    private List<HiddenStateModel.Result> runPromptModel(List<String> texts) {
        long t0 = System.nanoTime();
        List<HiddenStateModel.Result> results = promptModel.run(texts);
        long nanos = System.nanoTime() - t0;
        metrics.promptModelSeconds.observe(nanos / 1e9);
        busy(Metrics.PART_PROMPT_MODEL, nanos);
        return results;
    }

    /** For a prompt event: its alerts with the text around the tokens where each detector fired. */
    private List<io.saeguard.topics.events.Alert> withExcerpts(Work w, List<io.saeguard.topics.events.Alert> alerts) {
        if (w.prompt().isEmpty() || alerts.isEmpty() || !promptSettings.map(SidecarConfig.Prompts::excerpts).orElse(false)) {
            return alerts;
        }
        Work.PromptText p = w.prompt().get();
        int context = promptSettings.get().excerptContextChars();
        List<io.saeguard.topics.events.Alert> out = new ArrayList<>(alerts.size());
        for (io.saeguard.topics.events.Alert a : alerts) {
            if (a.positions().isEmpty()) {
                out.add(a);
                continue;
            }
            long first = a.positions().stream().mapToLong(Long::longValue).min().orElseThrow();
            long last = a.positions().stream().mapToLong(Long::longValue).max().orElseThrow();
            String excerpt = p.tokens().excerpt(p.text(), (int) first, (int) last + 1, context, 4 * context + 200);
            out.add(excerpt.isEmpty() ? a : new io.saeguard.topics.events.Alert(a.decision(), a.features(), a.positions(),
                    Optional.of(excerpt), a.hook(), a.model(), a.sae()));
        }
        return out;
    }

    private void flushAll(Map<String, Batch> batches, Map<String, DeviceSae> loaded) {
        if (!prompts.isEmpty()) {
            runPrompts(batches, loaded);
        }
        batches.forEach((sae, b) -> {
            if (!b.works.isEmpty()) {
                flush(sae, b, loaded);
            }
        });
    }

    private void flush(String saeId, Batch batch, Map<String, DeviceSae> loaded) {
        List<Work> works = new ArrayList<>(batch.works);
        batch.works.clear();
        batch.tokens = 0;
        works.removeIf(w -> generation.stale(w.generation())); // consumed again since a recovery
        if (works.isEmpty()) {
            return;
        }
        int tokens = 0;
        for (Work w : works) {
            tokens += w.tokens();
        }
        long tAssemble = System.nanoTime();
        DeviceSae sae = loaded.get(saeId);
        int dIn = sae.config().dIn();
        float[] x = batchBuffer(tokens * dIn);
        int offset = 0;
        for (Work w : works) {
            System.arraycopy(w.x(), 0, x, offset, w.x().length);
            offset += w.x().length;
        }
        SparseCodes codes;
        long t0 = System.nanoTime();
        busy(Metrics.PART_ASSEMBLE, t0 - tAssemble);
        try {
            codes = sae.encode(saeId, x, tokens, true); // every Work's values are finite (Work's contract)
        } catch (SaeInputException | RuntimeException e) {
            // Inputs were validated on the poll thread; this is an engine failure. Nothing is lost: dead-letter each record.
            LOGGER.atError().addKeyValue("sae", saeId).addKeyValue("records", works.size()).log("encode failed: {}", e.toString());
            for (Work w : works) {
                deadLetters.send(w.record(), w.source(), "encode", "engine_error", e);
            }
            return;
        }
        long tEncoded = System.nanoTime();
        busy(Metrics.PART_ENCODE, tEncoded - t0);
        metrics.encodeSeconds.labelValues(saeId, deviceLabel).observe((tEncoded - t0) / 1e9);
        metrics.batchTokens.observe(tokens);
        metrics.tokensEncoded.labelValues(saeId).inc(tokens);
        if (codes.truncatedTokens() > 0) {
            metrics.truncatedTokens.labelValues(saeId).inc(codes.truncatedTokens());
        }
        io.saeguard.sidecar.metrics.FeatureStats stats = featureStats.get(saeId);
        stats.record(codes);
        long tDetect = System.nanoTime();
        busy(Metrics.PART_FEATURES, tDetect - tEncoded);
        boolean needsActivations = detectorEngine.needsActivations(saeId);
        int row = 0;
        long now = System.currentTimeMillis();
        List<Work> decided = new ArrayList<>(works.size());
        List<ChunkOutcome> outcomes = new ArrayList<>(works.size());
        for (Work w : works) {
            int n = w.tokens();
            SparseCodes mine = codes.slice(row, n);
            row += n;
            ChunkOutcome outcome;
            try {
                Optional<int[]> ids = w.chunk().tokenIds().map(t -> t.toIntArray());
                Chunk chunk = new Chunk(w.chunk().requestId(), saeId, w.chunk().position(), mine,
                        needsActivations ? Optional.of(w.x()) : Optional.empty(), dIn, w.norms(), ids,
                        SpecialMask.of(w.chunk().specialMask(), ids, specialTokenIds.get(saeId), n), w.chunk().isFinal());
                outcome = detectorEngine.evaluate(chunk, now, Math.max(0, now - w.record().timestamp()));
            } catch (RuntimeException e) { // a detector's own failure is its fail mode's verdict; this is a chunk that cannot be built
                deadLetters.send(w.record(), w.source(), "detect", "detector_error", e);
                continue;
            }
            if (w.chunk().isFinal()) {
                requestPartitions.remove(w.chunk().requestId());
            } else {
                requestPartitions.put(w.chunk().requestId(), w.partition());
            }
            if (w.prompt().isPresent()) {
                outcome = new ChunkOutcome(outcome.decision(), withExcerpts(w, outcome.alerts()), outcome.verdicts());
            }
            decided.add(w);
            outcomes.add(outcome);
        }
        long tPublish = System.nanoTime();
        busy(Metrics.PART_DETECT, tPublish - tDetect);
        if (!decided.isEmpty()) {
            egress.execute(() -> publish(decided, outcomes));
        }
        long tFvu = System.nanoTime();
        busy(Metrics.PART_PUBLISH, tFvu - tPublish);
        // After the decisions are out: FVU samples never delay a batch's decisions.
        sampleForFvu(saeId, sae, x, tokens, dIn);
        busy(Metrics.PART_FVU, System.nanoTime() - tFvu);
    }

    /**
     * On the egress context: each decided record's decision and alerts to the output sink, in the engine's order. A
     * record whose outputs cannot be built or handed over is dead-lettered (stage {@code egress}), so it is never
     * left in flight.
     */
    private void publish(List<Work> decided, List<ChunkOutcome> outcomes) {
        for (int i = 0; i < decided.size(); i++) {
            Work w = decided.get(i);
            try {
                decisions.publish(w, outcomes.get(i));
            } catch (RuntimeException e) {
                LOGGER.atError().addKeyValue("offset", w.record().offset()).log("a decision could not be published: {}", e.toString());
                deadLetters.send(w.record(), w.source(), "egress", "publish_error", e);
            }
        }
    }

    /** Adds engine-thread time to {@code saeguard_engine_busy_seconds_total{part}}. */
    private void busy(int part, long nanos) {
        metrics.engineBusyParts.get(part).inc(nanos / 1e9);
    }

    /**
     * The engine thread's batch array, at least {@code values} long, reused from batch to batch (only the first
     * {@code tokens × d_in} values of a batch are read). A fresh one per batch was a 4.7 MB humongous allocation
     * for 512 tokens of 2304, and G1's young pauses for humongous allocations reached 150–250 ms on the
     * saturated 2-core benchmark machine (bench/README.md).
     */
    private float[] batchBuffer(int values) {
        if (batchBuffer.length < values) {
            batchBuffer = new float[values];
        }
        return batchBuffer;
    }

    /** Features named by detectors plus the configured watch list, per SAE. */
    private Map<String, Set<Integer>> watchList(Map<String, Set<Integer>> byDetectors) {
        Map<String, Set<Integer>> out = new HashMap<>();
        byDetectors.forEach((sae, ids) -> out.computeIfAbsent(sae, k -> new java.util.TreeSet<>()).addAll(ids));
        metricsSettings.watch().forEach((sae, ids) -> out.computeIfAbsent(sae, k -> new java.util.TreeSet<>()).addAll(ids));
        out.replaceAll((sae, ids) -> Set.copyOf(ids));
        return Map.copyOf(out);
    }

    /**
     * Rows sampled for the FVU metric are reconstructed {@value #FVU_ROWS} at a time. A reconstruct call encodes and
     * decodes its rows, streaming all of W_enc and W_dec whatever its row count: on 2 cores at 2304x16384 (BF16
     * encoder GEMM, F32 decode) one call took 40 ms for 32 rows, 59 ms for 64 and 106 ms for 128, i.e. 1.25 against
     * 0.83 ms per row, while the batch encode costs 0.28 ms per token (bench/README.md). At the default 1 % sample
     * rate, 32-row calls cost 4–9 % of the engine thread in the pipeline benchmark.
     */
    static final int FVU_ROWS = 128;

    /**
     * When the engine idles, pending FVU rows are reconstructed once the oldest has waited this long (so the metric
     * stays current at low traffic). Reconstructing them at every idle moment meant calls of one to a few rows,
     * each costing nearly a full pass over both weight matrices, at exactly the moderate loads where the engine
     * idles between small batches.
     */
    static final long FVU_IDLE_FLUSH_NANOS = TimeUnit.SECONDS.toNanos(2);

    /** Rows waiting to be reconstructed for one SAE's FVU metric: the first {@code count} of {@code rows}. */
    private static final class FvuSamples {
        final float[] rows;
        int count;
        long firstNanos; // when row 0 was sampled

        FvuSamples(int dIn) {
            this.rows = new float[FVU_ROWS * dIn];
        }
    }

    private final Map<String, FvuSamples> fvuSamples = new HashMap<>();

    /** Samples a {@code metrics.fvu_sample_rate} fraction of the batch's tokens; reconstructs once {@value #FVU_ROWS} are pending. */
    private void sampleForFvu(String saeId, DeviceSae sae, float[] x, int tokens, int dIn) {
        double rate = metricsSettings.fvuSampleRate();
        if (rate <= 0) {
            return;
        }
        FvuSamples pending = fvuSamples.computeIfAbsent(saeId, k -> new FvuSamples(dIn));
        for (int t = 0; t < tokens && pending.count < FVU_ROWS; t++) {
            if (sampler.nextDouble() < rate) {
                System.arraycopy(x, t * dIn, pending.rows, pending.count * dIn, dIn);
                if (pending.count++ == 0) {
                    pending.firstNanos = System.nanoTime();
                }
            }
        }
        if (pending.count == FVU_ROWS) {
            reconstructForFvu(saeId, sae);
        }
    }

    /** Reconstructs the SAE's pending FVU rows (if any) in one call and records them. */
    private void reconstructForFvu(String saeId, DeviceSae sae) {
        FvuSamples pending = fvuSamples.get(saeId);
        if (pending == null || pending.count == 0) {
            return;
        }
        int count = pending.count;
        pending.count = 0;
        int dIn = sae.config().dIn();
        io.saeguard.sidecar.metrics.FeatureStats stats = featureStats.get(saeId);
        try {
            float[] rec = sae.reconstruct(pending.rows, count);
            for (int i = 0; i < count; i++) {
                stats.recordReconstruction(java.util.Arrays.copyOfRange(pending.rows, i * dIn, (i + 1) * dIn),
                        java.util.Arrays.copyOfRange(rec, i * dIn, (i + 1) * dIn));
            }
        } catch (SaeInputException | RuntimeException e) {
            LOGGER.atDebug().log("FVU sample failed: {}", e.toString());
        }
    }

    /** Per-SAE feature statistics, for the metrics exporter (thread-safe objects). */
    public List<io.saeguard.sidecar.metrics.FeatureStats> featureStats() {
        return List.copyOf(featureStats.values());
    }

    /** Labels the running detectors give their features, per SAE (a snapshot, safe to read from any thread). */
    public Map<String, Map<Integer, String>> featureLabels() {
        return labels;
    }

    /** Features named by the running detectors plus {@code metrics.watch}, per SAE (a snapshot, safe to read from any thread). */
    public Map<String, Set<Integer>> watchedFeatures() {
        return watched;
    }

    /** Flushes what is queued, stops the thread and frees the device; waits up to {@code timeout}. */
    void stop(Duration timeout) throws InterruptedException {
        queue.add(new Stop());
        thread.join(timeout.toMillis());
    }

    @Override
    public void close() throws InterruptedException {
        if (thread.isAlive()) {
            stop(Duration.ofSeconds(30));
        }
    }
}
