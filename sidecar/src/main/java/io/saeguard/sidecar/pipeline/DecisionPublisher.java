package io.saeguard.sidecar.pipeline;

import io.saeguard.detectors.ChunkOutcome;
import io.saeguard.detectors.Verdict;
import io.saeguard.sidecar.metrics.Metrics;
import io.saeguard.topics.events.Alert;
import io.saeguard.topics.events.Decision;
import io.saeguard.topics.events.EventCodec;
import io.saeguard.topics.events.ShadowDecision;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;
import org.apache.kafka.clients.producer.ProducerRecord;

/**
 * Publishes a record's outputs: one decision to {@code saeguard.decisions}, its alerts to {@code saeguard.alerts} and
 * its shadow detectors' non-allow decisions to {@code saeguard.shadow} (with {@code "shadow": true}), keyed by request
 * id, and the request's state to {@code saeguard.state} when kept, as one group through the {@link OutputSink} (at-least-once or exactly-once: a shadow decision is delivered exactly
 * when the record's decision is). Thread-safe.
 */
final class DecisionPublisher {
    private static final EventCodec CODEC = new EventCodec();

    private final OutputSink sink;
    private final String decisionsTopic;
    private final String alertsTopic;
    private final String shadowTopic;
    private final Metrics metrics;
    private final Consumer<List<Alert>> alertListener;
    private final Optional<RequestStateLog.Target> stateTarget;

    /** @param alertListener gets each record's alerts once Kafka acknowledged them (the live page); must not block */
    DecisionPublisher(OutputSink sink, String decisionsTopic, String alertsTopic, String shadowTopic, Metrics metrics,
            Consumer<List<Alert>> alertListener) {
        this(sink, decisionsTopic, alertsTopic, shadowTopic, Optional.empty(), metrics, alertListener);
    }

    /**
     * @param stateTarget where each record's request state goes, in its output group (docs/architecture.md#request-state);
     *                   empty: request state is not kept outside the engine
     * @param alertListener gets each record's alerts once Kafka acknowledged them (the live page); must not block
     */
    DecisionPublisher(OutputSink sink, String decisionsTopic, String alertsTopic, String shadowTopic, Optional<RequestStateLog.Target> stateTarget,
            Metrics metrics, Consumer<List<Alert>> alertListener) {
        this.stateTarget = stateTarget;
        this.alertListener = alertListener;
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

    /** Publishes the outcome of {@code work} without request state; returns the decision as published (latency filled in). */
    Decision publish(Work work, ChunkOutcome outcome) {
        return publish(work, outcome, Optional.empty());
    }

    /**
     * Publishes the outcome of {@code work}; returns the decision as published (latency filled in). With a state topic,
     * {@code state} (the request's encoded snapshot after this record; empty once the request ended: a tombstone) goes
     * in the same output group, so it is delivered exactly when the decision is.
     */
    Decision publish(Work work, ChunkOutcome outcome, Optional<byte[]> state) {
        long produced = work.record().timestamp();
        long now = System.currentTimeMillis();
        Decision decision = outcome.decision().toBuilder().latencyMs(Math.max(0, now - produced)).ts(now).build();
        String key = work.requestId();
        List<ProducerRecord<String, byte[]>> outputs = new ArrayList<>(1 + outcome.alerts().size() + outcome.shadow().size());
        outputs.add(new ProducerRecord<>(decisionsTopic, key, CODEC.encode(decision)));
        for (Alert alert : outcome.alerts()) {
            outputs.add(new ProducerRecord<>(alertsTopic, key, CODEC.encode(alert)));
        }
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
            alertListener.accept(outcome.alerts());
        });
        return decision;
    }

    /** True once any output failed to deliver. */
    boolean failed() {
        return sink.failed();
    }
}
