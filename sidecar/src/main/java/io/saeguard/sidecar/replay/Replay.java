package io.saeguard.sidecar.replay;

import io.saeguard.sidecar.config.SidecarConfig;
import io.saeguard.sidecar.kafka.HistoryReader;
import io.saeguard.sidecar.pipeline.CheckEngine;
import io.saeguard.sidecar.pipeline.CheckRequest;
import io.saeguard.sidecar.pipeline.CheckResult;
import io.saeguard.sidecar.pipeline.FailureReason;
import io.saeguard.sidecar.pipeline.InvalidRequestException;
import io.saeguard.sidecar.pipeline.SaeRouter;
import io.saeguard.topics.DecodeException;
import io.saeguard.topics.activation.ActivationChunk;
import io.saeguard.topics.activation.ActivationCodec;
import io.saeguard.topics.catalog.TopicRole;
import io.saeguard.topics.events.Decision;
import io.saeguard.topics.events.EventCodec;
import io.saeguard.topics.events.PromptEvent;
import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Decides a stretch of recorded history with a config, as production decides it, and compares with what production
 * recorded (issue 20, item 2).
 *
 * <p><b>Deciding like production.</b> Each activation record goes through the checks production's poll thread makes
 * (key, SAE route, width, {@code batching.max_record_tokens}, finite values; a record that fails one is counted under
 * the dead-letter reason production gives it, and not decided) and then, as a {@link CheckRequest#ofChunk chunk check},
 * through a {@link CheckEngine}: the same engine loop, batching, encode, {@code ChunkEvaluator} and detectors with
 * per-request state as {@code saeguard run}. A prompt event goes through the prompt model as a text check. Records are
 * submitted in each partition's order, one thread, so each request's chunks are decided in record order. Not replayed:
 * detector deadlines (a replayed chunk is never late, where production may have been) and run-time detector changes
 * (the config's detector files are the detectors for the whole stretch).
 *
 * <p><b>Safe beside production.</b> {@link HistoryReader} reads with no consumer group and commits nothing; the engine
 * has no producer (a check-only engine refuses any output).
 *
 * <p>Not thread-safe: one thread runs it.
 */
public final class Replay {
    private static final Logger LOGGER = LoggerFactory.getLogger(Replay.class);
    private static final EventCodec CODEC = new EventCodec();
    /**
     * How far before {@code --from} the recorded decisions are read: a decision is written after its record, but the
     * record's timestamp comes from the producer's clock, which may run ahead of the sidecar's.
     */
    static final Duration DECISION_LEAD = Duration.ofMinutes(5);
    private static final Duration CHECK_TIMEOUT = Duration.ofMinutes(5);

    private final SidecarConfig config;
    private final CheckEngine engine;
    private final Map<TopicRole, String> topics;
    private final int inFlight;
    private final Progress progress;
    private final SaeRouter router;
    private final Map<String, Integer> dIns;

    /**
     * @param dIns     per configured SAE id, its input width
     * @param topics   the topic names, by role (the config's, over the bundled catalog's)
     * @param inFlight records queued at the engine at once, so they batch
     */
    public Replay(SidecarConfig config, Map<String, Integer> dIns, CheckEngine engine, Map<TopicRole, String> topics, int inFlight,
            PrintStream progress) {
        if (inFlight < 1) {
            throw new IllegalArgumentException("--in-flight must be at least 1, found " + inFlight);
        }
        this.config = config;
        this.engine = engine;
        this.topics = Map.copyOf(topics);
        this.inFlight = inFlight;
        this.progress = new Progress(progress);
        this.router = new SaeRouter(config.saes());
        this.dIns = Map.copyOf(dIns);
    }

    /**
     * Replays {@code [fromMs, toMs]} (to the end now without {@code toMs}), then reads the recorded decisions and
     * compares.
     */
    public ReplayReport run(HistoryReader reader, long fromMs, OptionalLong toMs) throws InterruptedException {
        List<String> inputs = new ArrayList<>(List.of(topics.get(TopicRole.ACTIVATIONS)));
        if (engine.promptSae().isPresent()) {
            inputs.add(topics.get(TopicRole.PROMPTS));
        }
        List<HistoryReader.PartitionRange> ranges = reader.plan(inputs, fromMs, toMs);
        long total = ranges.stream().mapToLong(HistoryReader.PartitionRange::size).sum();
        LOGGER.atInfo().addKeyValue("topics", inputs).addKeyValue("offsets", total).addKeyValue("from_ms", fromMs)
                .addKeyValue("to_ms", toMs.isPresent() ? toMs.getAsLong() : "end").log("replaying history");

        List<ReplayedRecord> replayed = new ArrayList<>();
        Map<String, Long> rejected = new TreeMap<>();
        Set<String> requests = new HashSet<>();
        ArrayDeque<Pending> window = new ArrayDeque<>();
        reader.read(ranges, record -> {
            try {
                Optional<CheckRequest> check = checkOf(record, rejected);
                if (check.isEmpty()) {
                    return;
                }
                requests.add(check.get().requestId());
                window.add(new Pending(record, engine.check(check.get())));
                while (window.size() >= inFlight) {
                    settle(window.poll(), replayed, rejected);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("replay interrupted", e);
            }
        }, passed -> progress.show("replay", passed, total));
        while (!window.isEmpty()) {
            settle(window.poll(), replayed, rejected);
        }
        progress.done("replay", total);

        DecisionComparison comparison = new DecisionComparison();
        List<HistoryReader.PartitionRange> decisionRanges = reader.plan(List.of(topics.get(TopicRole.DECISIONS)),
                Math.max(0, fromMs - DECISION_LEAD.toMillis()), OptionalLong.empty());
        long decisionOffsets = decisionRanges.stream().mapToLong(HistoryReader.PartitionRange::size).sum();
        reader.read(decisionRanges, record -> {
            if (record.key() == null || !requests.contains(record.key()) || record.value() == null) {
                return;
            }
            try {
                comparison.addRecorded(CODEC.decodeDecision(record.value()));
            } catch (DecodeException e) {
                LOGGER.atWarn().addKeyValue("partition", record.partition()).addKeyValue("offset", record.offset())
                        .log("a recorded decision does not decode, left out: {}", e.getMessage());
            }
        }, passed -> progress.show("decisions", passed, decisionOffsets));
        progress.done("decisions", decisionOffsets);
        return new ReplayReport(fromMs, toMs, comparison.compare(replayed), rejected, ranges, engine.detectorDefinitions().stream()
                .filter(d -> !d.shadow()).map(d -> d.id()).toList());
    }

    /** The check production would make of a record, or empty (counted in {@code rejected}) where it dead-letters it. */
    private Optional<CheckRequest> checkOf(ConsumerRecord<String, byte[]> r, Map<String, Long> rejected) {
        if (r.value() == null) {
            return reject(FailureReason.NULL_VALUE, rejected);
        }
        if (r.topic().equals(topics.get(TopicRole.PROMPTS))) {
            PromptEvent event;
            try {
                event = CODEC.decodePrompt(r.value());
            } catch (DecodeException e) {
                return reject(FailureReason.of(e), rejected);
            }
            if (r.key() != null && !r.key().equals(event.requestId())) {
                return reject(FailureReason.KEY_MISMATCH, rejected);
            }
            if (event.text().isBlank()) {
                return reject(FailureReason.EMPTY_TEXT, rejected);
            }
            return Optional.of(CheckRequest.ofText(event.requestId(), engine.promptSae().orElseThrow(), event.text()));
        }
        ActivationChunk chunk;
        try {
            chunk = ActivationCodec.decode(r.value());
        } catch (DecodeException e) {
            return reject(FailureReason.of(e), rejected);
        }
        if (r.key() != null && !r.key().equals(chunk.requestId())) {
            return reject(FailureReason.KEY_MISMATCH, rejected);
        }
        Optional<String> sae = router.route(chunk);
        if (sae.isEmpty()) {
            return reject(FailureReason.UNKNOWN_SAE, rejected);
        }
        if (chunk.dIn() != dIns.get(sae.get())) {
            return reject(FailureReason.WRONG_D_IN, rejected);
        }
        if (chunk.tokens() > config.batching().maxRecordTokens()) {
            return reject(FailureReason.OVERSIZE, rejected);
        }
        return Optional.of(CheckRequest.ofChunk(chunk, sae.get()));
    }

    private static Optional<CheckRequest> reject(FailureReason reason, Map<String, Long> rejected) {
        rejected.merge(reason.label(), 1L, Long::sum);
        return Optional.empty();
    }

    private void settle(Pending p, List<ReplayedRecord> replayed, Map<String, Long> rejected) throws InterruptedException {
        CheckResult result;
        try {
            result = p.result().get(CHECK_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            FailureReason reason = e.getCause() instanceof InvalidRequestException ? FailureReason.NON_FINITE
                    : p.record().topic().equals(topics.get(TopicRole.PROMPTS)) ? FailureReason.MODEL_ERROR : FailureReason.ENGINE_ERROR;
            rejected.merge(reason.label(), 1L, Long::sum);
            LOGGER.atDebug().addKeyValue("partition", p.record().partition()).addKeyValue("offset", p.record().offset())
                    .log("record not decided: {}", e.getCause().toString());
            return;
        } catch (TimeoutException e) {
            throw new IllegalStateException("the engine decided no record for " + CHECK_TIMEOUT.toMinutes() + " minutes; is the device stuck?", e);
        }
        Decision d = result.outcome().orElseThrow().decision();
        replayed.add(new ReplayedRecord(p.record().topic(), p.record().partition(), p.record().offset(), d));
    }

    private record Pending(ConsumerRecord<String, byte[]> record, CompletableFuture<CheckResult> result) {
    }

    /**
     * The progress bar on stderr: records read of those estimated from the end offsets; redrawn in place on a terminal,
     * a line every few seconds otherwise.
     */
    private static final class Progress {
        private static final long INTERVAL_NS = TimeUnit.SECONDS.toNanos(2);
        private static final int WIDTH = 30;
        private final PrintStream out;
        private final boolean terminal = System.console() != null;
        private long last = System.nanoTime();

        Progress(PrintStream out) {
            this.out = out;
        }

        void show(String what, long passed, long total) {
            long now = System.nanoTime();
            if (now - last < (terminal ? INTERVAL_NS / 10 : INTERVAL_NS)) {
                return;
            }
            last = now;
            out.print(line(what, passed, total) + (terminal ? "\r" : "\n"));
            out.flush();
        }

        void done(String what, long total) {
            out.println(line(what, total, total));
        }

        private static String line(String what, long passed, long total) {
            double f = total == 0 ? 1 : Math.min(1, passed / (double) total);
            int filled = (int) Math.round(f * WIDTH);
            return String.format(Locale.ROOT, "%s: [%s%s] %d/%d offsets (%.0f%%)", what, "#".repeat(filled), ".".repeat(WIDTH - filled), passed,
                    total, 100 * f);
        }
    }
}
