package io.saeguard.sidecar.pipeline;

import io.saeguard.detectors.ChunkOutcome;
import io.saeguard.detectors.Verdict;
import io.saeguard.sidecar.metrics.Metrics;
import io.saeguard.topics.events.Alert;
import io.saeguard.topics.events.Decision;
import io.saeguard.topics.events.EventCodec;
import io.saeguard.topics.events.JudgeRequest;
import io.saeguard.topics.events.ShadowDecision;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.apache.kafka.clients.producer.ProducerRecord;

/**
 * Publishes a record's outputs: one decision to {@code saeguard.decisions}, its alerts to {@code saeguard.alerts} and
 * its shadow detectors' non-allow decisions to {@code saeguard.shadow} (with {@code "shadow": true}), keyed by request
 * id, and the request's state to {@code saeguard.state} when kept, as one group through the {@link OutputSink} (at-least-once or exactly-once: a shadow decision is delivered exactly
 * when the record's decision is), and the judge cascade's requests and decisions. Thread-safe.
 *
 * <p>A record that names a {@code reply_partition} (checked by the poll thread against the decisions topic's partitions,
 * {@link ReplyPartitions}) has its decision written to that partition, so the LLM server that asked for it reads only
 * its own partition (issue 19); every record of a request names the same one, so the request's decisions stay in one
 * partition, in order. Its alerts and shadow decisions keep the key's partition: no applier reads them.
 */
final class DecisionPublisher {
    private static final EventCodec CODEC = new EventCodec();

    private final OutputSink sink;
    private final String decisionsTopic;
    private final String alertsTopic;
    private final String shadowTopic;
    private final String judgeTopic;
    private final Metrics metrics;
    private final Optional<RequestStateLog.Target> stateTarget;

    /**
     * @param stateTarget where each record's request state goes, in its output group (docs/architecture.md#request-state);
     *                   empty: request state is not kept outside the engine
     */
    DecisionPublisher(OutputSink sink, String decisionsTopic, String alertsTopic, String shadowTopic, String judgeTopic,
            Optional<RequestStateLog.Target> stateTarget, Metrics metrics) {
        this.judgeTopic = judgeTopic;
        this.stateTarget = stateTarget;
        this.sink = sink;
        this.decisionsTopic = decisionsTopic;
        this.alertsTopic = alertsTopic;
        this.shadowTopic = shadowTopic;
        this.metrics = metrics;
    }

    /** Whether {@link #publish} writes request state: then the engine takes a snapshot after each record. */
    boolean writesState() {
        return stateTarget.isPresent();
    }

    /** Publishes the outcome of {@code work} without a judge request or request state; returns the decision as published. */
    Decision publish(Work work, ChunkOutcome outcome) {
        return publish(work, outcome, Optional.empty(), Optional.empty());
    }

    /**
     * Publishes the outcome of {@code work} and, when its escalate band started an escalation, the request for judgement to
     * {@code saeguard.judge} in the same output group (so with exactly-once the judge sees it exactly when the record's
     * escalating decision is committed); returns the decision as published. With a state topic, {@code state} (the
     * request's encoded snapshot after this record; empty once the request ended: a tombstone) goes in the same output
     * group, so it is delivered exactly when the decision is.
     */
    Decision publish(Work work, ChunkOutcome outcome, Optional<JudgeRequest> judgement, Optional<byte[]> state) {
        long produced = work.record().timestamp();
        long now = System.currentTimeMillis();
        Decision decision = outcome.decision().toBuilder().latencyMs(Math.max(0, now - produced)).ts(now).build();
        String key = work.requestId();
        List<ProducerRecord<String, byte[]>> outputs = new ArrayList<>(1 + outcome.alerts().size() + outcome.shadow().size());
        // Kafka's API: a null partition means the partitioner hashes the key.
        Integer partition = work.replyPartition().isPresent() ? work.replyPartition().getAsInt() : null;
        outputs.add(new ProducerRecord<>(decisionsTopic, partition, key, CODEC.encode(decision)));
        for (Alert alert : outcome.alerts()) {
            outputs.add(new ProducerRecord<>(alertsTopic, key, CODEC.encode(alert)));
        }
        judgement.ifPresent(j -> outputs.add(new ProducerRecord<>(judgeTopic, key, CODEC.encode(j))));
        for (Decision shadow : outcome.shadow()) {
            Decision stamped = shadow.toBuilder().latencyMs(Math.max(0, now - produced)).ts(now).build();
            outputs.add(new ProducerRecord<>(shadowTopic, key, CODEC.encode(new ShadowDecision(stamped))));
        }
        stateTarget.ifPresent(t -> outputs.add(RequestStateLog.record(t, work.record(), key, state)));
        metrics.ingestLatency.observe(Math.max(0, work.receivedMs() - produced) / 1000.0);
        metrics.engineLatency.observe(Math.max(0, now - work.receivedMs()) / 1000.0);
        sink.emit(work.source(), outputs, () -> {
            long acked = System.currentTimeMillis();
            metrics.decisionLatency.observe(Math.max(0, acked - produced) / 1000.0);
            metrics.egressLatency.observe(Math.max(0, acked - now) / 1000.0);
            metrics.events.labelValues(work.record().topic(), Metrics.OUTCOME_DECIDED).inc();
            metrics.decisions.labelValues(decision.detector().orElse("none"), decision.action().wireName()).inc();
            for (Alert alert : outcome.alerts()) {
                metrics.alerts.labelValues(alert.detector()).inc();
            }
            for (Verdict v : outcome.verdicts()) {
                metrics.detectorVerdicts.labelValues(v.detector(), v.action().wireName(), v.mode()).inc();
                if (!Double.isNaN(v.score())) { // NaN: the detector failed with an error
                    metrics.detectorScore.labelValues(v.detector()).observe(v.score());
                }
                v.failure().ifPresent(f -> metrics.detectorFailures.labelValues(v.detector(), f.kind()).inc());
            }
            judgement.ifPresent(j -> metrics.judgeEscalations.labelValues(j.detector(), Metrics.JUDGE_REQUESTED).inc());
        });
        return decision;
    }

    /**
     * Publishes a decision of the judge cascade (docs/architecture.md#judge-cascade): a judge's verdict, its output group
     * that of the verdict record ({@code source}), or a fallback at the timeout, whose source has no offset (it is no
     * record's output: it goes out with its partition's next delivery).
     *
     * @param outcome {@link Metrics#JUDGE_VERDICT} or {@link Metrics#JUDGE_FALLBACK}
     * @param sinceMs when the event behind it was produced (the verdict record's timestamp; the escalation's deadline), for latency
     * @param replyPartition the escalating record's {@code reply_partition}: the judged decision goes where its server reads
     */
    void publishJudged(Source source, Decision judged, String outcome, long sinceMs, java.util.OptionalInt replyPartition) {
        long now = System.currentTimeMillis();
        Decision decision = judged.toBuilder().latencyMs(Math.max(0, now - sinceMs)).ts(now).build();
        Integer partition = replyPartition.isPresent() ? replyPartition.getAsInt() : null;
        sink.emit(source, List.of(new ProducerRecord<>(decisionsTopic, partition, decision.requestId(), CODEC.encode(decision))), () -> {
            metrics.decisions.labelValues(decision.detector().orElse("none"), decision.action().wireName()).inc();
            metrics.judgeEscalations.labelValues(decision.detector().orElse("none"), outcome).inc();
        });
    }

    /** True once any output failed to deliver. */
    boolean failed() {
        return sink.failed();
    }
}
