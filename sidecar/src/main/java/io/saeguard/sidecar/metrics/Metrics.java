package io.saeguard.sidecar.metrics;

import io.prometheus.metrics.core.datapoints.CounterDataPoint;
import io.prometheus.metrics.core.datapoints.DistributionDataPoint;
import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.Gauge;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.util.List;

/**
 * Every metric the sidecar exports (docs/architecture.md#metrics: the names are API). Prefix {@code saeguard_},
 * base units, {@code _total} counters, bounded labels only (never request ids).
 *
 * <p>Thread-safe: the Prometheus client's instruments are.
 */
public final class Metrics {
    public static final String OUTCOME_DECIDED = "decided";
    public static final String OUTCOME_DEADLETTER = "deadletter";
    /** {@code outcome} of {@code saeguard_judge_escalations_total}: a request for judgement was published. */
    public static final String JUDGE_REQUESTED = "requested";
    /** {@code outcome} of {@code saeguard_judge_escalations_total}: a judge's verdict became the request's decision. */
    public static final String JUDGE_VERDICT = "verdict";
    /** {@code outcome} of {@code saeguard_judge_escalations_total}: no verdict in time, the band's fallback decided. */
    public static final String JUDGE_FALLBACK = "fallback";
    /** Prefix of the Kafka clients' own metrics ({@link KafkaClientMetrics}). */
    public static final String KAFKA_CLIENT_PREFIX = "kafka_";
    /** Consumer lag per assigned partition, from the consumer's {@code records-lag} metric ({@link KafkaClientMetrics}). */
    public static final String CONSUMER_LAG = "saeguard_consumer_lag_records";
    public static final String CONSUMER_LAG_HELP = "Records between this member's position and the end of each assigned partition "
            + "(the consumer's records-lag at its last fetch)";

    private final PrometheusRegistry registry;
    public final Counter events;
    public final Counter tokensEncoded;
    /** The {@code stage} label values of {@code saeguard_stage_latency_seconds}, in pipeline order. */
    public static final List<String> STAGES = List.of("ingest", "engine", "egress");
    /**
     * The {@code part} label values of {@code saeguard_engine_busy_seconds_total}: {@code assemble} (copying the records
     * into the batch), {@code encode} (the SAE encode), {@code features} (feature statistics), {@code detect}
     * (the detectors; the activation norms come with the poll thread's finite check), {@code publish} (handing a batch's verdicts to the egress context, which builds the JSON and calls the producer),
     * {@code fvu} (reconstructing sampled rows for the FVU metric), {@code prompt_model} (the prompt model),
     * {@code sample} (the full encode of sampled tokens for the feature metrics, on an SAE whose decisions use the
     * watched-feature encode; docs/algorithms.md#feature-metrics).
     */
    public static final List<String> ENGINE_PARTS = List.of("assemble", "encode", "features", "detect", "publish", "fvu", "prompt_model",
            "sample");
    /** Indexes into {@link #engineBusyParts}. */
    public static final int PART_ASSEMBLE = 0, PART_ENCODE = 1, PART_FEATURES = 2, PART_DETECT = 3, PART_PUBLISH = 4, PART_FVU = 5,
            PART_PROMPT_MODEL = 6, PART_SAMPLE = 7;
    public final Histogram encodeSeconds;
    public final Histogram batchTokens;
    public final Counter decisions;
    public final Counter detectorVerdicts;
    public final Counter alerts;
    /**
     * {@code saeguard_review_verdicts_total{detector,verdict}}: reviewer verdicts, counted once in the fleet, by the replica
     * that accepted the {@code POST .../review} once Kafka acknowledged it (a replica reading the reviews topic does not
     * count it again). A repeated identical verdict on an alert is not counted; a changed one is counted under its new
     * verdict. Reviewed precision per detector is {@code tp / (tp + fp)} over the same window (dashboards/).
     */
    public final Counter reviewVerdicts;
    public final Histogram decisionLatency;
    /** {@code decision_latency_seconds} split by stage: ingest, engine, egress ({@link #STAGES}). */
    public final Histogram stageLatency;
    /** {@code stageLatency}'s three series, resolved once (observed per decision). */
    public final DistributionDataPoint ingestLatency;
    public final DistributionDataPoint engineLatency;
    public final DistributionDataPoint egressLatency;
    /**
     * {@code saeguard_engine_busy_seconds_total{part}}: where the engine thread's time goes, per part of a batch
     * ({@link #ENGINE_PARTS}); its rate against 1 s/s is how busy the engine is, the rest it waited for work.
     */
    public final Counter engineBusy;
    /** {@code engineBusy}'s series in {@link #ENGINE_PARTS} order, resolved once (added to per batch). */
    public final List<CounterDataPoint> engineBusyParts;
    public final Gauge inflightTokens;
    public final Gauge pausedPartitions;
    public final Gauge featureSampleFraction;
    public final Counter deadletters;
    public final Counter truncatedTokens;
    public final Counter assignments;
    public final Counter recoveries;
    public final Counter stateRestored;
    public final Counter stateSkipped;
    public final Histogram detectorScore;
    public final Counter detectorFailures;
    public final Counter judgeEscalations;
    public final Histogram promptModelSeconds;
    public final Counter promptTokensTruncated;
    public final io.prometheus.metrics.core.metrics.Info buildInfo;

    public Metrics(PrometheusRegistry registry) {
        this.registry = registry;
        events = Counter.builder().name("saeguard_events_total").help("Input records by topic and outcome (decided, deadletter)")
                .labelNames("topic", "outcome").register(registry);
        tokensEncoded = Counter.builder().name("saeguard_tokens_encoded_total").help("Tokens encoded, by SAE").labelNames("sae")
                .register(registry);
        encodeSeconds = Histogram.builder().name("saeguard_encode_seconds").help("Wall time of one batch encode on the engine")
                .labelNames("sae", "device").classicUpperBounds(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5)
                .register(registry);
        batchTokens = Histogram.builder().name("saeguard_batch_tokens").help("Tokens per encoded micro-batch")
                .classicUpperBounds(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096).register(registry);
        decisions = Counter.builder().name("saeguard_decisions_total").help("Decisions published, by detector and action")
                .labelNames("detector", "action").register(registry);
        detectorVerdicts = Counter.builder().name("saeguard_detector_verdicts_total")
                .help("Each detector's verdict per record, by action and mode (live: it took part in the decision; shadow: "
                        + "mode shadow, it changed nothing and its non-allow verdicts went to the shadow topic)")
                .labelNames("detector", "action", "mode").register(registry);
        alerts = Counter.builder().name("saeguard_alerts_total").help("Alerts published, by detector").labelNames("detector")
                .register(registry);
        reviewVerdicts = Counter.builder().name("saeguard_review_verdicts_total")
                .help("Reviewer verdicts on alerts (true_positive, false_positive, unsure), by detector; counted by the replica that "
                        + "accepted the review").labelNames("detector", "verdict").register(registry);
        decisionLatency = Histogram.builder().name("saeguard_decision_latency_seconds")
                .help("From the activation record's timestamp to the decision's acknowledgement by Kafka")
                .classicUpperBounds(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10).register(registry);
        stageLatency = Histogram.builder().name("saeguard_stage_latency_seconds")
                .help("Decision latency by stage: ingest (record timestamp to received by the poll thread: producer, broker, fetch), "
                        + "engine (received to decision handed to the producer: queue, batching, encode, detectors), "
                        + "egress (handed to the producer to acknowledged by Kafka)")
                .labelNames("stage").classicUpperBounds(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
                .register(registry);
        ingestLatency = stageLatency.labelValues(STAGES.get(0)); // all three exported from the start, at zero
        engineLatency = stageLatency.labelValues(STAGES.get(1));
        egressLatency = stageLatency.labelValues(STAGES.get(2));
        engineBusy = Counter.builder().name("saeguard_engine_busy_seconds").help("Engine thread time by part of the batch work "
                + "(assemble, encode, features, detect, publish, fvu, prompt_model); the rest of the time it waited for work")
                .labelNames("part").register(registry);
        engineBusyParts = ENGINE_PARTS.stream().map(engineBusy::labelValues).toList(); // all exported from the start, at zero
        inflightTokens = Gauge.builder().name("saeguard_inflight_tokens").help("Tokens consumed whose outputs are not acknowledged yet")
                .register(registry);
        pausedPartitions = Gauge.builder().name("saeguard_paused_partitions").help("Assigned partitions paused by backpressure")
                .register(registry);
        featureSampleFraction = Gauge.builder().name("saeguard_feature_sample_fraction")
                .help("Share of tokens encoded whole for the sampled feature metrics on the watched-feature encode now "
                        + "(metrics.full_encode_fraction, more while the CPU has room, up to metrics.full_encode_max_fraction)")
                .register(registry);
        deadletters = Counter.builder().name("saeguard_deadletters_total").help("Records sent to the dead-letter topic, by stage and reason")
                .labelNames("stage", "reason").register(registry);
        truncatedTokens = Counter.builder().name("saeguard_truncated_tokens_total")
                .help("Tokens with more active features than max_active (their smallest were dropped), by SAE").labelNames("sae")
                .register(registry);
        assignments = Counter.builder().name("saeguard_partition_assignments_total")
                .help("Rebalance callbacks that assigned partitions to this member").register(registry);
        stateRestored = Counter.builder().name("saeguard_state_requests_restored_total")
                .help("Requests whose detector state was restored from the state topic when their partition was assigned or rewound")
                .register(registry);
        stateSkipped = Counter.builder().name("saeguard_state_records_skipped_total")
                .help("State topic records that could not be read (another format version, corruption): their request starts afresh")
                .register(registry);
        detectorScore = Histogram.builder().name("saeguard_detector_score")
                .help("Each detector's aggregated score per record (>= 1 means its rule fired)").labelNames("detector")
                .classicUpperBounds(0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10).register(registry);
        detectorFailures = Counter.builder().name("saeguard_detector_failures_total")
                .help("Records on which a detector failed (reason error: it could not evaluate them; deadline: its verdict came "
                        + "after policy.deadline_ms), so its fail mode decided").labelNames("detector", "reason").register(registry);
        judgeEscalations = Counter.builder().name("saeguard_judge_escalations_total")
                .help("Judge cascade events by detector and outcome: requested (sent to the judge), verdict (the judge's answer "
                        + "decided), fallback (no answer within judge_timeout_ms); verdicts that could not be applied are dead letters")
                .labelNames("detector", "outcome").register(registry);
        promptModelSeconds = Histogram.builder().name("saeguard_prompt_model_seconds")
                .help("Prompt model forward pass per batch of prompt events (tokenize, pad, run)")
                .classicUpperBounds(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10).register(registry);
        promptTokensTruncated = Counter.builder().name("saeguard_prompt_tokens_truncated_total")
                .help("Tokens of prompt events dropped by prompts.max_tokens truncation").register(registry);
        recoveries = Counter.builder().name("saeguard_pipeline_recoveries_total")
                .help("Times an output could not be delivered and the pipeline rewound to the committed offsets").register(registry);
        buildInfo = io.prometheus.metrics.core.metrics.Info.builder().name("saeguard_build_info")
                .help("saeguard's version and the SAEs this instance loaded").labelNames("version", "saes").register(registry);
    }

    public PrometheusRegistry registry() {
        return registry;
    }
}
