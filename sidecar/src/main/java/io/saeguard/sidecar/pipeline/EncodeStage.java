package io.saeguard.sidecar.pipeline;

import io.saeguard.detectors.ChunkOutcome;
import io.saeguard.detectors.RequestSnapshot;
import io.saeguard.detectors.RequestSnapshotCodec;
import io.saeguard.sae.engine.DeviceSae;
import io.saeguard.sidecar.metrics.FeatureStats;
import io.saeguard.sidecar.metrics.FullCodeSampler;
import io.saeguard.sidecar.metrics.FvuSampler;
import io.saeguard.sidecar.metrics.Metrics;
import io.saeguard.sidecar.metrics.SampleFraction;
import io.saeguard.topics.codes.SparseCodes;
import io.saeguard.topics.events.JudgeRequest;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.utils.Time;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One SAE batch from rows to outcomes: assembles the batch's activations, encodes them once, and puts each chunk's
 * rows to the {@link ChunkEvaluator}. Records' outcomes go to the egress executor in the batch's order (decisions and
 * alerts to Kafka); HTTP checks complete their futures. Then, with the decisions out, the records' codes feed the
 * SAE's {@link FeatureStats} and its {@link FvuSampler}. Each part's time goes to
 * {@code saeguard_engine_busy_seconds_total{part}}.
 *
 * <p>An SAE whose codes are per feature ({@link DeviceSae#encodesWatchedAlone()}) is encoded for its watched features
 * only ({@link #watch}: those its detectors read plus {@code metrics.watch}; docs/algorithms.md#watched-feature-encode):
 * decisions and the watched features' counters come from those codes, and a sample of the records' tokens
 * ({@link FullCodeSampler}) is encoded whole for the metrics that need every feature. HTTP checks' answers carry
 * full codes (a second encode of the check's own rows). Other SAEs (TopK, AbsTopK) are encoded whole, and every
 * token is then in the sample.
 *
 * <p>Not thread-safe: the engine thread owns it, the loaded SAEs and the evaluator.
 */
final class EncodeStage {
    private static final Logger LOGGER = LoggerFactory.getLogger(EncodeStage.class);

    private final Map<String, DeviceSae> loaded;
    private final Map<String, FeatureStats> featureStats;
    private final Map<String, FvuSampler> fvu;
    private final Map<String, FullCodeSampler> samples;
    private final Map<String, int[]> watched = new java.util.HashMap<>();
    private final ChunkEvaluator evaluator;
    private final Optional<PromptStage> prompts;
    private final EngineOutputs outputs;
    private final Metrics metrics;
    private final Generation generation;
    private final Time time;
    private final RequestPartitions requestPartitions;
    private final JudgeCascade judge;
    private final String deviceLabel;
    private final Optional<MetricsEncoder> metricsEncoder;
    private final SampleFraction sampleFraction;
    private double appliedFraction;
    private float[] batchBuffer = new float[0];

    /**
     * @param loaded       the SAEs on the device, by id
     * @param featureStats per SAE, its feature statistics
     * @param fvuSampleRate the fraction of records' tokens sampled for the FVU metric ({@code metrics.fvu_sample_rate})
     * @param sampleFraction the fraction of records' tokens encoded whole for the sampled feature statistics
     *                     ({@code metrics.full_encode_fraction} and more while the CPU has room; SAEs on the watched-feature
     *                     encode only)
     * @param prompts      the prompt stage, for prompt events' alert excerpts
     * @param maxRequests  the most requests with detector state (bounds the partition tracking too)
     * @param judge        the pending judge escalations: each decided record may start one
     * @param metricsEncoder where the full-code sample and the FVU rows are encoded (on the CPU); empty: on this thread
     */
    EncodeStage(Map<String, DeviceSae> loaded, Map<String, FeatureStats> featureStats, double fvuSampleRate, SampleFraction sampleFraction,
            ChunkEvaluator evaluator, Optional<PromptStage> prompts, EngineOutputs outputs, Metrics metrics, Generation generation, Time time,
            int maxRequests, String deviceLabel, JudgeCascade judge, Optional<MetricsEncoder> metricsEncoder) {
        this.judge = judge;
        this.metricsEncoder = metricsEncoder;
        this.sampleFraction = sampleFraction;
        this.appliedFraction = sampleFraction.current();
        this.loaded = Map.copyOf(loaded);
        this.featureStats = Map.copyOf(featureStats);
        Map<String, FvuSampler> samplers = new java.util.LinkedHashMap<>();
        Map<String, FullCodeSampler> full = new java.util.LinkedHashMap<>();
        featureStats.forEach((id, stats) -> {
            int dIn = loaded.get(id).config().dIn();
            samplers.put(id, new FvuSampler(stats, dIn, fvuSampleRate, new java.util.Random()));
            full.put(id, new FullCodeSampler(stats, dIn, appliedFraction, new java.util.Random()));
        });
        this.fvu = Map.copyOf(samplers);
        this.samples = Map.copyOf(full);
        this.evaluator = evaluator;
        this.prompts = prompts;
        this.outputs = outputs;
        this.metrics = metrics;
        this.generation = generation;
        this.time = time;
        this.requestPartitions = new RequestPartitions(maxRequests);
        this.deviceLabel = deviceLabel;
        metrics.featureSampleFraction.set(appliedFraction);
    }

    /**
     * Sets each SAE's watched features (detectors' plus {@code metrics.watch}; an SAE missing from the map watches
     * none): SAEs on the watched-feature encode gather the matching encoder columns now, before the next batch.
     */
    void watch(Map<String, Set<Integer>> features) {
        loaded.forEach((id, sae) -> {
            if (sae.encodesWatchedAlone()) {
                int dSae = sae.config().dSae();
                Set<Integer> mine = features.getOrDefault(id, Set.of());
                // Detectors' ids were checked against d_sae; an out-of-range metrics.watch id is left out, as its metrics are.
                List<Integer> valid = mine.stream().filter(f -> f >= 0 && f < dSae).toList();
                if (valid.size() < mine.size()) {
                    LOGGER.atWarn().addKeyValue("sae", id).addKeyValue("dSae", dSae).log("metrics.watch names features outside the SAE: ignored");
                }
                sae.watch(valid);
                watched.put(id, sae.watched());
            }
            LOGGER.atInfo().addKeyValue("sae", id).addKeyValue("watchedFeatureEncode", sae.encodesWatchedAlone())
                    .addKeyValue("watched", sae.encodesWatchedAlone() ? sae.watched().length : 0).log("SAE encode path");
        });
    }

    /**
     * Encodes one SAE's batch and decides each chunk of it. Records of a stale generation (consumed again since a
     * recovery) are dropped. An encode failure dead-letters the records (stage {@code encode}) and fails the checks.
     */
    void run(TokenBatcher.Batch<ChunkInput> batch) {
        List<ChunkInput> items = new ArrayList<>(batch.items());
        items.removeIf(i -> i instanceof Work w && generation.stale(w.generation()));
        if (items.isEmpty()) {
            return;
        }
        String saeId = batch.sae();
        DeviceSae sae = loaded.get(saeId);
        int dIn = sae.config().dIn();
        long tAssemble = time.nanoseconds();
        int tokens = 0;
        boolean onlyRecords = true;
        for (ChunkInput i : items) {
            tokens += i.tokens();
            onlyRecords &= i instanceof Work;
        }
        float[] x = batchBuffer(tokens * dIn);
        int offset = 0;
        for (ChunkInput i : items) {
            i.x().copyTo(x, offset);
            offset += i.tokens() * dIn;
        }
        long t0 = time.nanoseconds();
        busy(Metrics.PART_ASSEMBLE, t0 - tAssemble);
        SparseCodes codes;
        boolean watchedPath = sae.encodesWatchedAlone();
        try {
            // every input's values are finite (checked before it was queued)
            codes = watchedPath ? sae.encodeWatched(saeId, x, tokens, true) : sae.encode(saeId, x, tokens, true);
        } catch (Exception e) {
            // Inputs were validated before they were queued; this is an engine failure. Nothing is lost: dead-letter each record.
            LOGGER.atError().addKeyValue("sae", saeId).addKeyValue("inputs", items.size()).log("encode failed: {}", e.toString());
            for (ChunkInput i : items) {
                if (i instanceof Work w) {
                    outputs.deadLetters().send(w.record(), w.source(), FailureReason.ENGINE_ERROR, e);
                } else if (i instanceof HttpCheck c) {
                    c.result().completeExceptionally(e);
                }
            }
            return;
        }
        long tEncoded = time.nanoseconds();
        busy(Metrics.PART_ENCODE, tEncoded - t0);
        metrics.encodeSeconds.labelValues(saeId, deviceLabel).observe((tEncoded - t0) / 1e9);
        metrics.batchTokens.observe(tokens);
        if (codes.truncatedTokens() > 0) {
            metrics.truncatedTokens.labelValues(saeId).inc(codes.truncatedTokens());
        }
        recordFeatures(saeId, items, x, codes, onlyRecords, watchedPath, tEncoded);
        long tDetect = time.nanoseconds();
        busy(Metrics.PART_FEATURES, tDetect - tEncoded);
        long nowMs = time.milliseconds();
        List<Work> decided = new ArrayList<>(items.size());
        List<ChunkOutcome> outcomes = new ArrayList<>(items.size());
        List<Optional<JudgeRequest>> judgements = new ArrayList<>(items.size());
        List<Optional<byte[]>> states = new ArrayList<>(items.size());
        List<Runnable> answers = new ArrayList<>(0);
        int row = 0;
        for (ChunkInput i : items) {
            SparseCodes mine = codes.slice(row, i.tokens());
            if (i instanceof Work w) {
                decide(w, mine, dIn, nowMs, decided, outcomes, judgements, states);
            } else if (i instanceof HttpCheck c) {
                answers.add(answer(c, sae, mine, watchedPath, x, row, dIn, nowMs));
            }
            row += i.tokens();
        }
        long tPublish = time.nanoseconds();
        busy(Metrics.PART_DETECT, tPublish - tDetect);
        if (!decided.isEmpty()) {
            outputs.egress().execute(() -> publish(decided, outcomes, judgements, states));
        }
        answers.forEach(Runnable::run); // after the records' decisions are handed over: a check's full encode never delays them
        long tFvu = time.nanoseconds();
        busy(Metrics.PART_PUBLISH, tFvu - tPublish);
        sampleForFvu(saeId, items, x, tFvu);
        long tSample = time.nanoseconds();
        busy(Metrics.PART_FVU, tSample - tFvu);
        if (watchedPath && samples.get(saeId).pending() == FullCodeSampler.ROWS) {
            encodeSample(saeId);
            busy(Metrics.PART_SAMPLE, time.nanoseconds() - tSample);
        }
    }

    /**
     * The pending sampled rows of an SAE encoded whole and recorded, by the metrics encoder's thread when it has room,
     * else here; truncations count as on the full path.
     */
    private void encodeSample(String saeId) {
        FullCodeSampler sampler = samples.get(saeId);
        sampler.take().ifPresent(taken -> {
            boolean queued = metricsEncoder.isPresent() && metricsEncoder.get().submitSample(saeId,
                    own -> countTruncated(saeId, sampler.encode(taken, (rows, n) -> own.encode(saeId, rows, n, true))));
            if (!queued) {
                sampleFraction.fellBehind(); // the thread is behind: the sample shrinks toward its floor
                DeviceSae sae = loaded.get(saeId);
                countTruncated(saeId, sampler.encode(taken, (rows, n) -> sae.encode(saeId, rows, n, true)));
            }
        });
    }

    /** A batch filled before its max delay (the pipeline has a backlog): the full-code sample goes back to its floor. */
    void backlogged() {
        sampleFraction.backlogged();
    }

    /** Reconsiders the full-code sample's fraction (at most once a second) and applies a change to every SAE's sampler. */
    private void applySampleFraction(long nowNanos) {
        double f = sampleFraction.update(nowNanos);
        if (f != appliedFraction) { // never 0 here: a sample off (floor 0) never moves
            appliedFraction = f;
            samples.values().forEach(s -> s.fraction(f));
            metrics.featureSampleFraction.set(f);
        }
    }

    private void countTruncated(String saeId, Optional<SparseCodes> codes) {
        codes.ifPresent(c -> {
            if (c.truncatedTokens() > 0) {
                metrics.truncatedTokens.labelValues(saeId).inc(c.truncatedTokens());
            }
        });
    }

    /** The pending FVU rows of an SAE reconstructed and recorded, by the metrics encoder's thread when it has room, else here. */
    private void reconstructFvu(String saeId) {
        FvuSampler sampler = fvu.get(saeId);
        float[] rows = sampler.take();
        if (rows.length == 0) {
            return;
        }
        int n = rows.length / loaded.get(saeId).config().dIn();
        boolean queued = metricsEncoder.isPresent() && metricsEncoder.get().submit(saeId, own -> sampler.reconstruct(rows, n, own::reconstruct));
        if (!queued) {
            sampler.reconstruct(rows, n, loaded.get(saeId)::reconstruct);
        }
    }

    /**
     * Holds request state read back from the state topic for {@code partition} (assigned or rewound). A snapshot that
     * cannot be restored (malformed counted positions) is skipped and counted; its request starts afresh.
     */
    void restore(TopicPartition partition, List<RequestSnapshot> snapshots) {
        for (RequestSnapshot s : snapshots) {
            try {
                evaluator.detectors().restore(s);
                requestPartitions.seen(s.requestId(), partition, false);
            } catch (IllegalArgumentException e) {
                metrics.stateSkipped.inc();
                LOGGER.atWarn().addKeyValue("partition", partition.toString()).log("request state not restored, the request starts afresh: {}",
                        e.getMessage());
            }
        }
    }

    /** Drops the detector state of requests last seen on these partitions (they were revoked). */
    void forget(Set<TopicPartition> partitions) {
        evaluator.detectors().forgetRequests(requestPartitions.takeFrom(partitions));
        judge.forget(partitions);
    }

    /**
     * When the engine idles: reconstructs each SAE's pending FVU rows, and encodes its pending sampled rows, once the
     * oldest waited long enough.
     */
    void reconstructIdleFvu() {
        long t0 = time.nanoseconds();
        fvu.forEach((id, sampler) -> {
            if (sampler.idleDue(t0)) {
                reconstructFvu(id);
            }
        });
        long t1 = time.nanoseconds();
        busy(Metrics.PART_FVU, t1 - t0);
        samples.forEach((id, sampler) -> {
            if (sampler.idleDue(t1)) {
                encodeSample(id);
            }
        });
        busy(Metrics.PART_SAMPLE, time.nanoseconds() - t1);
    }

    /**
     * Records' tokens only feed the feature statistics and {@code saeguard_tokens_encoded_total} (HTTP checks do not).
     * Codes of the whole SAE are recorded as they are (every token in the sample); watched-feature codes give the
     * watched features' exact counts, and the records' rows are offered to the full-code sampler.
     */
    private void recordFeatures(String saeId, List<ChunkInput> items, float[] x, SparseCodes codes, boolean onlyRecords,
            boolean watchedPath, long nowNanos) {
        FeatureStats stats = featureStats.get(saeId);
        if (onlyRecords && !watchedPath) {
            stats.record(codes);
            metrics.tokensEncoded.labelValues(saeId).inc(codes.tokens());
            return;
        }
        int[] ids = watched.getOrDefault(saeId, new int[0]);
        if (watchedPath) {
            applySampleFraction(nowNanos);
        }
        FullCodeSampler sampler = samples.get(saeId);
        int row = 0;
        for (ChunkInput i : items) {
            if (i instanceof Work) {
                SparseCodes mine = onlyRecords && items.size() == 1 ? codes : codes.slice(row, i.tokens());
                if (watchedPath) {
                    long position = stats.tokens();
                    stats.recordWatched(mine, ids);
                    sampler.sample(x, row, i.tokens(), position, nowNanos);
                } else {
                    stats.record(mine);
                }
                metrics.tokensEncoded.labelValues(saeId).inc(i.tokens());
            }
            row += i.tokens();
        }
    }

    private void decide(Work w, SparseCodes codes, int dIn, long nowMs, List<Work> decided, List<ChunkOutcome> outcomes,
            List<Optional<JudgeRequest>> judgements, List<Optional<byte[]>> states) {
        ChunkOutcome outcome;
        try {
            outcome = evaluator.evaluate(w, codes, dIn, nowMs);
        } catch (RuntimeException e) { // a detector's own failure is its fail mode's verdict; this is a chunk that cannot be built
            outputs.deadLetters().send(w.record(), w.source(), FailureReason.DETECTOR_ERROR, e);
            return;
        }
        requestPartitions.seen(w.requestId(), w.partition(), w.isFinal());
        if (w.prompt().isPresent()) {
            outcome = outcome.withAlerts(prompts.orElseThrow().withExcerpts(w.prompt().get(), outcome.alerts()));
        }
        decided.add(w);
        outcomes.add(outcome);
        judgements.add(judge.escalate(outcome, w.partition(), w.replyPartition(), w.prompt().map(Work.PromptText::text), nowMs));
        // The request's state right after this record, before any later chunk of it: what a new owner must resume from.
        states.add(outputs.decisions().writesState()
                ? evaluator.detectors().snapshot(w.requestId()).map(RequestSnapshotCodec::encode)
                : Optional.empty());
    }

    /**
     * Decides an HTTP check on the batch's codes like a record (now, in the batch's order, so request state is updated
     * as the stream would update it) and returns the answer to complete after the batch's records are handed over: with
     * full codes (on the watched path the check's own rows are encoded whole once more, so {@code /v1/encode} and
     * {@code /v1/check} still return every feature).
     */
    private Runnable answer(HttpCheck c, DeviceSae sae, SparseCodes codes, boolean watchedPath, float[] x, int fromRow, int dIn, long nowMs) {
        Optional<ChunkOutcome> outcome;
        try {
            outcome = c.decide() ? Optional.of(evaluator.evaluate(c, codes, dIn, nowMs)) : Optional.empty();
        } catch (RuntimeException e) {
            return () -> c.result().completeExceptionally(e);
        }
        float[] rows = watchedPath ? java.util.Arrays.copyOfRange(x, fromRow * dIn, (fromRow + c.tokens()) * dIn) : null;
        return () -> {
            try {
                SparseCodes full = watchedPath ? sae.encode(c.sae(), rows, c.tokens(), true) : codes;
                c.result().complete(new CheckResult(c.sae(), c.position(), full, outcome));
            } catch (Exception e) {
                c.result().completeExceptionally(e);
            }
        };
    }

    /**
     * On the egress context: each decided record's decision and alerts to the output sink, in the engine's order. A
     * record whose outputs cannot be built or handed over is dead-lettered (stage {@code egress}), so it is never
     * left in flight.
     */
    private void publish(List<Work> decided, List<ChunkOutcome> outcomes, List<Optional<JudgeRequest>> judgements,
            List<Optional<byte[]>> states) {
        for (int i = 0; i < decided.size(); i++) {
            Work w = decided.get(i);
            try {
                outputs.decisions().publish(w, outcomes.get(i), judgements.get(i), states.get(i));
            } catch (RuntimeException e) {
                LOGGER.atError().addKeyValue("offset", w.record().offset()).log("a decision could not be published: {}", e.toString());
                outputs.deadLetters().send(w.record(), w.source(), FailureReason.PUBLISH_ERROR, e);
            }
        }
    }

    /** After the decisions are out (FVU samples never delay them): the records' rows only, HTTP checks' are not sampled. */
    private void sampleForFvu(String saeId, List<ChunkInput> items, float[] x, long nowNanos) {
        FvuSampler sampler = fvu.get(saeId);
        boolean full = false;
        int from = 0;
        for (ChunkInput i : items) {
            if (i instanceof Work) {
                full |= sampler.sample(x, from, i.tokens(), nowNanos);
            }
            from += i.tokens();
        }
        if (full) {
            reconstructFvu(saeId);
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
}
