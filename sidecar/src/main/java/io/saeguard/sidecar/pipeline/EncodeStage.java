package io.saeguard.sidecar.pipeline;

import io.saeguard.detectors.ChunkOutcome;
import io.saeguard.sae.engine.DeviceSae;
import io.saeguard.sidecar.metrics.FeatureStats;
import io.saeguard.sidecar.metrics.FvuSampler;
import io.saeguard.sidecar.metrics.Metrics;
import io.saeguard.topics.codes.SparseCodes;
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
 * <p>Not thread-safe: the engine thread owns it, the loaded SAEs and the evaluator.
 */
final class EncodeStage {
    private static final Logger LOGGER = LoggerFactory.getLogger(EncodeStage.class);

    private final Map<String, DeviceSae> loaded;
    private final Map<String, FeatureStats> featureStats;
    private final Map<String, FvuSampler> fvu;
    private final ChunkEvaluator evaluator;
    private final Optional<PromptStage> prompts;
    private final EngineOutputs outputs;
    private final Metrics metrics;
    private final Generation generation;
    private final Time time;
    private final RequestPartitions requestPartitions;
    private final String deviceLabel;
    private float[] batchBuffer = new float[0];

    /**
     * @param loaded       the SAEs on the device, by id
     * @param featureStats per SAE, its feature statistics
     * @param fvuSampleRate the fraction of records' tokens sampled for the FVU metric ({@code metrics.fvu_sample_rate})
     * @param prompts      the prompt stage, for prompt events' alert excerpts
     * @param maxRequests  the most requests with detector state (bounds the partition tracking too)
     */
    EncodeStage(Map<String, DeviceSae> loaded, Map<String, FeatureStats> featureStats, double fvuSampleRate, ChunkEvaluator evaluator,
            Optional<PromptStage> prompts, EngineOutputs outputs, Metrics metrics, Generation generation, Time time, int maxRequests,
            String deviceLabel) {
        this.loaded = Map.copyOf(loaded);
        this.featureStats = Map.copyOf(featureStats);
        Map<String, FvuSampler> samplers = new java.util.LinkedHashMap<>();
        featureStats.forEach((id, stats) -> samplers.put(id, new FvuSampler(stats, loaded.get(id).config().dIn(), fvuSampleRate,
                new java.util.Random())));
        this.fvu = Map.copyOf(samplers);
        this.evaluator = evaluator;
        this.prompts = prompts;
        this.outputs = outputs;
        this.metrics = metrics;
        this.generation = generation;
        this.time = time;
        this.requestPartitions = new RequestPartitions(maxRequests);
        this.deviceLabel = deviceLabel;
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
            System.arraycopy(i.x(), 0, x, offset, i.tokens() * dIn);
            offset += i.tokens() * dIn;
        }
        long t0 = time.nanoseconds();
        busy(Metrics.PART_ASSEMBLE, t0 - tAssemble);
        SparseCodes codes;
        try {
            codes = sae.encode(saeId, x, tokens, true); // every input's values are finite (checked before it was queued)
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
        recordFeatures(saeId, items, codes, onlyRecords);
        long tDetect = time.nanoseconds();
        busy(Metrics.PART_FEATURES, tDetect - tEncoded);
        long nowMs = time.milliseconds();
        List<Work> decided = new ArrayList<>(items.size());
        List<ChunkOutcome> outcomes = new ArrayList<>(items.size());
        int row = 0;
        for (ChunkInput i : items) {
            SparseCodes mine = codes.slice(row, i.tokens());
            row += i.tokens();
            if (i instanceof Work w) {
                decide(w, mine, dIn, nowMs, decided, outcomes);
            } else if (i instanceof HttpCheck c) {
                answer(c, mine, dIn, nowMs);
            }
        }
        long tPublish = time.nanoseconds();
        busy(Metrics.PART_DETECT, tPublish - tDetect);
        if (!decided.isEmpty()) {
            outputs.egress().execute(() -> publish(decided, outcomes));
        }
        long tFvu = time.nanoseconds();
        busy(Metrics.PART_PUBLISH, tFvu - tPublish);
        sampleForFvu(saeId, sae, items, x, tFvu);
        busy(Metrics.PART_FVU, time.nanoseconds() - tFvu);
    }

    /** Drops the detector state of requests last seen on these partitions (they were revoked). */
    void forget(Set<TopicPartition> partitions) {
        evaluator.detectors().forgetRequests(requestPartitions.takeFrom(partitions));
    }

    /** When the engine idles: reconstructs each SAE's pending FVU rows once the oldest waited long enough. */
    void reconstructIdleFvu() {
        long t0 = time.nanoseconds();
        fvu.forEach((id, sampler) -> {
            if (sampler.idleDue(t0)) {
                sampler.reconstruct(loaded.get(id)::reconstruct);
            }
        });
        busy(Metrics.PART_FVU, time.nanoseconds() - t0);
    }

    /** Records' tokens only feed the feature statistics and {@code saeguard_tokens_encoded_total} (HTTP checks do not). */
    private void recordFeatures(String saeId, List<ChunkInput> items, SparseCodes codes, boolean onlyRecords) {
        FeatureStats stats = featureStats.get(saeId);
        if (onlyRecords) {
            stats.record(codes);
            metrics.tokensEncoded.labelValues(saeId).inc(codes.tokens());
            return;
        }
        int row = 0;
        for (ChunkInput i : items) {
            if (i instanceof Work) {
                stats.record(codes.slice(row, i.tokens()));
                metrics.tokensEncoded.labelValues(saeId).inc(i.tokens());
            }
            row += i.tokens();
        }
    }

    private void decide(Work w, SparseCodes codes, int dIn, long nowMs, List<Work> decided, List<ChunkOutcome> outcomes) {
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
    }

    private void answer(HttpCheck c, SparseCodes codes, int dIn, long nowMs) {
        try {
            Optional<ChunkOutcome> outcome = c.decide() ? Optional.of(evaluator.evaluate(c, codes, dIn, nowMs)) : Optional.empty();
            c.result().complete(new CheckResult(c.sae(), c.position(), codes, outcome));
        } catch (RuntimeException e) {
            c.result().completeExceptionally(e);
        }
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
                outputs.decisions().publish(w, outcomes.get(i));
            } catch (RuntimeException e) {
                LOGGER.atError().addKeyValue("offset", w.record().offset()).log("a decision could not be published: {}", e.toString());
                outputs.deadLetters().send(w.record(), w.source(), FailureReason.PUBLISH_ERROR, e);
            }
        }
    }

    /** After the decisions are out (FVU samples never delay them): the records' rows only, HTTP checks' are not sampled. */
    private void sampleForFvu(String saeId, DeviceSae sae, List<ChunkInput> items, float[] x, long nowNanos) {
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
            sampler.reconstruct(sae::reconstruct);
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
