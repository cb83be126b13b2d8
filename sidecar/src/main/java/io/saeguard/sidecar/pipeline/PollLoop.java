package io.saeguard.sidecar.pipeline;

import io.saeguard.detectors.RequestSnapshot;
import io.saeguard.sidecar.config.SidecarConfig;
import io.saeguard.sidecar.metrics.Metrics;
import io.saeguard.topics.DecodeException;
import io.saeguard.topics.events.EventCodec;
import io.saeguard.topics.events.JudgeVerdict;
import io.saeguard.topics.events.PromptEvent;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.concurrent.ForkJoinWorkerThread;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.utils.Time;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The ingest thread: it alone owns the {@link Consumer}. It polls, decodes and validates each
 * activation record (bad ones go to the dead-letter topic), routes it to an SAE and hands it to the
 * engine thread; it commits, per partition, the highest offset below which every record's outputs
 * were acknowledged ({@link OffsetTracker}) — asynchronously in steady state, synchronously on
 * revoke and shutdown.
 *
 * <p>Backpressure: above {@code max_inflight_tokens} it pauses its partitions <em>and keeps
 * polling</em> (a paused consumer's poll returns nothing but keeps the group membership alive), and
 * resumes below {@code resume_inflight_tokens}. Partitions assigned while paused are paused too.
 *
 * <p>Every clock read and sleep goes through the given {@link Time}, and the engine is reached only
 * through {@link EngineIntake}, so the loop's logic runs in unit tests against a {@code MockConsumer}
 * and a manual clock, one {@link #pollOnce} at a time.
 *
 * <p>Size: about 500 lines, kept in one class on purpose. Everything here is the poll thread's own state — the
 * consumer, the offset tracker, the pause flag, the recovery's generation and backoff — and the rebalance callbacks
 * run inside {@code poll()} on the same thread and change that same state; split across classes, each piece would
 * need the others' fields. Its decisions are unit-tested without a broker ({@code PollLoopTest}).
 */
final class PollLoop implements Runnable {
    private static final Logger LOGGER = LoggerFactory.getLogger(PollLoop.class);
    private static final Duration POLL = Duration.ofMillis(50);
    private static final long PAUSE_LOG_INTERVAL_NANOS = TimeUnit.MINUTES.toNanos(1);
    private static final long COMMIT_INTERVAL_NANOS = TimeUnit.MILLISECONDS.toNanos(200);
    private static final long REVOKE_DRAIN_NANOS = TimeUnit.SECONDS.toNanos(10);
    private static final Duration RECOVERY_CALL_TIMEOUT = Duration.ofSeconds(10);
    private static final long FAILURE_STREAK_WINDOW_NANOS = TimeUnit.SECONDS.toNanos(60);

    private final Consumer<String, byte[]> consumer;
    private final List<String> topics;
    private final SidecarConfig.Batching batching;
    private final EngineIntake engine;
    private final DeadLetterPublisher deadLetters;
    private final OutputSink sink;
    private final Generation generation;
    private final Metrics metrics;
    private final Optional<TransactionalSink> transactions;
    private final Optional<PromptRoute> prompts;
    private final ReplyPartitions replies;
    private final Optional<String> verdicts;
    private final Optional<RequestStateLog> state;
    private final Time time;
    private final ActivationValidator validator;
    /** The decode threads ({@code batching.decode_threads} > 1), or null: decode on this thread. */
    private final ForkJoinPool decodePool;

    /** Where prompt events come from and which SAE their hidden states go to. */
    record PromptRoute(String topic, String sae, int maxTokens) {
    }

    private static final EventCodec PROMPT_CODEC = new EventCodec();
    private final OffsetTracker offsets = new OffsetTracker();
    private final ConcurrentLinkedQueue<Source> acks = new ConcurrentLinkedQueue<>();
    /** Released by every {@link #ack}: a paused loop waits on it instead of in {@code poll}, so it resumes as soon as the acks allow. */
    private final Semaphore ackSignal = new Semaphore(0);
    private final AtomicLong inflightTokens = new AtomicLong();
    private final AtomicBoolean stopping = new AtomicBoolean();
    private final AtomicBoolean assigned = new AtomicBoolean();
    private final CountDownLatch stopped = new CountDownLatch(1);
    private volatile Duration drainTimeout = Duration.ofSeconds(15);
    private boolean paused;
    private long lastPauseLog; // when a pause was last logged at INFO
    private long pausesNotLogged; // pauses logged at DEBUG since then
    private long lastCommit;
    /** This poll handed something to the engine: it gets a {@link EngineIntake#pollEnd} after the poll's last record. */
    private boolean handedOver;
    /** A recovery started and has not completed: partitions stay paused, nothing is committed. */
    private volatile boolean rewindPending;
    /** An unexpected exception in the loop: recover as for an output failure. */
    private volatile boolean loopFailed;
    private long nextRecoveryNanos;
    private long lastRecoveredNanos = Long.MIN_VALUE / 2;
    /** Failed recovery attempts plus failures soon after a recovery: drives the backoff. */
    private int failureStreak;

    /**
     * @param dIns each SAE's {@code d_in}, by SAE id (the router's ids)
     * @param replies checks each record's {@code reply_partition} against the decisions topic (through this consumer)
     * @param verdicts the judge-verdicts topic, when it is among {@code topics}: its records are judges' verdicts
     * @param state where request state is read back from when partitions are assigned or rewound (empty: not kept)
     * @param time the clock of every deadline, interval and backoff ({@link Time#SYSTEM} in production)
     */
    PollLoop(Consumer<String, byte[]> consumer, List<String> topics, SidecarConfig.Batching batching, SaeRouter router,
            Map<String, Integer> dIns, EngineIntake engine, DeadLetterPublisher deadLetters, OutputSink sink, Generation generation,
            Metrics metrics, Optional<TransactionalSink> transactions, Optional<PromptRoute> prompts, ReplyPartitions replies, Optional<String> verdicts,
            Optional<RequestStateLog> state, Time time) {
        this.prompts = prompts;
        this.replies = replies;
        this.verdicts = verdicts;
        this.state = state;
        this.time = time;
        this.lastPauseLog = time.nanoseconds() - PAUSE_LOG_INTERVAL_NANOS;
        this.consumer = consumer;
        this.topics = List.copyOf(topics);
        this.batching = batching;
        this.engine = engine;
        this.deadLetters = deadLetters;
        this.sink = sink;
        this.generation = generation;
        this.metrics = metrics;
        this.transactions = transactions;
        this.validator = new ActivationValidator(router, dIns, batching.maxRecordTokens());
        this.decodePool = batching.decodeThreads() > 1 ? new ForkJoinPool(batching.decodeThreads(), pool -> {
            ForkJoinWorkerThread t = ForkJoinPool.defaultForkJoinWorkerThreadFactory.newThread(pool);
            t.setName("saeguard-decode-" + t.getPoolIndex());
            t.setDaemon(true);
            return t;
        }, null, false) : null;
    }

    /** Where the publishers report finished records (any thread). */
    void ack(Source source) {
        acks.add(source);
        ackSignal.release();
    }

    /** Whether the group assigned this member at least once. */
    boolean assigned() {
        return assigned.get();
    }

    /** Starts the shutdown sequence: stop fetching, drain in-flight records to the deadline, commit, close. */
    void stop(Duration drain) {
        drainTimeout = drain;
        stopping.set(true);
    }

    /** Waits until the loop closed the consumer. */
    boolean awaitStopped(Duration timeout) throws InterruptedException {
        return stopped.await(timeout.toMillis(), TimeUnit.MILLISECONDS);
    }

    @Override
    public void run() {
        try {
            subscribe();
            while (!stopping.get()) {
                pollOnce();
            }
            drain();
        } catch (WakeupException e) {
            // shutting down
        } catch (RuntimeException e) {
            LOGGER.error("poll loop failed: {}", e.toString(), e);
        } finally {
            if (decodePool != null) {
                decodePool.shutdownNow();
            }
            try {
                consumer.close(Duration.ofSeconds(10));
            } catch (RuntimeException e) {
                LOGGER.warn("closing the consumer: {}", e.toString());
            }
            state.ifPresent(RequestStateLog::close);
            stopped.countDown();
        }
    }

    /** Subscribes to the input topics with this loop's rebalance listener (the first thing {@link #run} does). */
    void subscribe() {
        consumer.subscribe(topics, new Rebalance());
    }

    /**
     * One iteration of the loop: recover if an output failed, take in acknowledgements, apply
     * backpressure, commit when due, poll once and hand the records on. An unexpected exception
     * marks the loop failed (the next iteration recovers) instead of ending it; a
     * {@link WakeupException} ends it.
     */
    void pollOnce() {
        try {
            if (sink.failed() || rewindPending || loopFailed) {
                recover();
            }
            drainAcks();
            if (!rewindPending) {
                backpressure();
                commitIfDue(false);
            }
            ConsumerRecords<String, byte[]> records;
            if (paused && !rewindPending) {
                // Paused partitions fetch nothing: poll only for the group's callbacks (and partitions assigned since the
                // pause), then wait for the acknowledgements that let the loop resume. A poll(50 ms) here held the
                // resume back by up to 50 ms a cycle while the engine had drained its queue and idled.
                records = consumer.poll(Duration.ZERO);
                awaitAck();
            } else {
                records = consumer.poll(POLL);
            }
            if (decodePool == null || records.count() < 2) {
                for (ConsumerRecord<String, byte[]> r : records) {
                    handle(r, isActivation(r) ? validator.check(r) : null);
                }
            } else {
                List<ActivationValidator.Outcome> checked = checkInParallel(records);
                int i = 0;
                for (ConsumerRecord<String, byte[]> r : records) {
                    handle(r, checked.get(i++));
                }
            }
            if (handedOver) {
                handedOver = false;
                engine.pollEnd();
            }
        } catch (WakeupException e) {
            throw e;
        } catch (RuntimeException e) {
            // Records of this poll may be half handed over: rewind to the committed offsets, as for an output failure.
            LOGGER.error("poll loop iteration failed; recovering: {}", e.toString(), e);
            loopFailed = true;
        }
    }

    /** Waits up to {@link #POLL} for an acknowledgement (returns at once when one came since this iteration's drainAcks). */
    private void awaitAck() {
        try {
            ackSignal.tryAcquire(POLL.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void drain() {
        consumer.pause(consumer.assignment());
        long deadline = time.nanoseconds() + drainTimeout.toNanos();
        while (offsets.unfinished() > 0 && time.nanoseconds() < deadline) {
            drainAcks();
            consumer.poll(POLL); // keeps the membership alive while paused
        }
        drainAcks();
        if (offsets.unfinished() > 0) {
            LOGGER.atWarn().addKeyValue("unfinished", offsets.unfinished())
                    .log("drain deadline passed; unfinished records will be processed again by the next owner");
        }
        commitIfDue(true);
    }

    /**
     * Checks a poll's activation records on the decode threads ({@code batching.decode_threads} > 1; {@link ActivationValidator}
     * is pure), their outcomes in the poll's order; a prompt event or a judge's verdict gets {@code null} (the poll thread
     * handles it). Only the checks run there: the order, the offsets, the dead letters and the hand-over to the engine stay
     * on this thread, record by record, in the order Kafka gave them. With one decode thread the poll loop checks each
     * record inline and builds no lists.
     */
    private List<ActivationValidator.Outcome> checkInParallel(ConsumerRecords<String, byte[]> records) {
        List<ConsumerRecord<String, byte[]>> list = new ArrayList<>(records.count());
        records.forEach(list::add);
        ForkJoinTask<List<ActivationValidator.Outcome>> task = decodePool.submit(() -> list.parallelStream()
                .map(r -> isActivation(r) ? validator.check(r) : null).collect(java.util.stream.Collectors.toList()));
        return task.join();
    }

    /** Not a prompt event nor a judge's verdict: the records the decode threads check. */
    private boolean isActivation(ConsumerRecord<String, byte[]> r) {
        return !(prompts.isPresent() && r.topic().equals(prompts.get().topic())) && !(verdicts.isPresent() && r.topic().equals(verdicts.get()));
    }

    private void handle(ConsumerRecord<String, byte[]> r, ActivationValidator.Outcome checked) {
        TopicPartition tp = new TopicPartition(r.topic(), r.partition());
        offsets.started(tp, r.offset());
        if (checked == null) {
            if (verdicts.isPresent() && r.topic().equals(verdicts.get())) {
                handleVerdict(r);
            } else {
                handlePrompt(r);
            }
            return;
        }
        if (checked instanceof ActivationValidator.Rejected rejected) {
            deadLetter(r, rejected.reason(), rejected.error());
            return;
        }
        ActivationValidator.Accepted a = (ActivationValidator.Accepted) checked;
        if (badReplyPartition(r, a.chunk().replyPartition())) {
            return;
        }
        inflightTokens.addAndGet(a.chunk().tokens());
        metrics.inflightTokens.set(inflightTokens.get());
        engine.submit(new Work(r, generation.current(), a.chunk(), a.sae(), a.norms()));
        handedOver = true;
    }

    /** A prompt event: JSON per topics/schemas, keyed by its request id, with text; the engine runs the prompt model. */
    private void handlePrompt(ConsumerRecord<String, byte[]> r) {
        if (r.value() == null) {
            deadLetter(r, FailureReason.NULL_VALUE, new DecodeException(DecodeException.Reason.MISSING_FIELD, "prompt record has no value (a tombstone?)"));
            return;
        }
        PromptEvent event;
        try {
            event = PROMPT_CODEC.decodePrompt(r.value());
        } catch (DecodeException e) {
            deadLetter(r, FailureReason.of(e), e);
            return;
        }
        if (r.key() != null && !r.key().equals(event.requestId())) {
            deadLetter(r, FailureReason.KEY_MISMATCH, new IllegalArgumentException("record key '" + r.key()
                    + "' differs from the event's request_id; key prompt records by request id"));
            return;
        }
        if (badReplyPartition(r, event.replyPartition())) {
            return;
        }
        if (event.text().isBlank()) {
            deadLetter(r, FailureReason.EMPTY_TEXT, new IllegalArgumentException("prompt event has no text"));
            return;
        }
        int counted = prompts.get().maxTokens();
        inflightTokens.addAndGet(counted);
        metrics.inflightTokens.set(inflightTokens.get());
        engine.submitPrompt(new PromptWork(r, generation.current(), event, prompts.get().sae(), counted));
        handedOver = true;
    }

    /** Dead-letters a record whose reply partition the decisions topic lacks; true when it did. */
    private boolean badReplyPartition(ConsumerRecord<String, byte[]> r, OptionalInt replyPartition) {
        if (replyPartition.isEmpty()) {
            return false;
        }
        Optional<String> problem = replies.problem(replyPartition.getAsInt());
        problem.ifPresent(p -> deadLetter(r, FailureReason.REPLY_PARTITION_OUT_OF_RANGE, new IllegalArgumentException(p)));
        return problem.isPresent();
    }

    /**
     * A judge's verdict: JSON per {@code judge-verdict.schema.json}, keyed by its request id; the engine applies it to the
     * request's pending escalation (docs/architecture.md#judge-cascade). A malformed one is dead-lettered here.
     */
    private void handleVerdict(ConsumerRecord<String, byte[]> r) {
        JudgeVerdict verdict;
        try {
            if (r.value() == null) {
                throw new DecodeException(DecodeException.Reason.MISSING_FIELD, "judge verdict record has no value (a tombstone?)");
            }
            verdict = PROMPT_CODEC.decodeJudgeVerdict(r.value());
        } catch (DecodeException e) {
            deadLetter(r, FailureReason.MALFORMED_VERDICT, e);
            return;
        }
        if (r.key() == null || !r.key().equals(verdict.requestId())) {
            deadLetter(r, FailureReason.MALFORMED_VERDICT, new IllegalArgumentException("record key '" + r.key()
                    + "' differs from the verdict's request_id; key verdicts by request id, as the judge request was keyed"));
            return;
        }
        engine.submitVerdict(new VerdictWork(r, generation.current(), verdict));
        handedOver = true;
    }

    private void deadLetter(ConsumerRecord<String, byte[]> r, FailureReason reason, Throwable error) {
        deadLetters.send(r, new Source(new TopicPartition(r.topic(), r.partition()), r.offset(), generation.current(), 0), reason, error);
    }

    /** Whether the pipeline is healthy: no output failure, no recovery under way. */
    boolean healthy() {
        return !sink.failed() && !rewindPending && !loopFailed;
    }

    /**
     * After an output could not be delivered: stop committing, advance the {@link Generation} (the
     * work still in flight turns stale), make the sink usable again, and seek every assigned
     * partition back to the offset the group committed, dropping request state so those records
     * are processed again from a clean slate. Any step that fails (the broker is still away) is
     * retried with a capped backoff while the partitions stay paused and the instance unready.
     */
    private void recover() {
        long now = time.nanoseconds();
        Set<TopicPartition> assigned = consumer.assignment();
        if (!rewindPending) {
            rewindPending = true;
            consumer.pause(assigned);
            // A failure soon after a recovery (the output topic is still missing, say) backs off further.
            failureStreak = now - lastRecoveredNanos < FAILURE_STREAK_WINDOW_NANOS ? failureStreak + 1 : 0;
            nextRecoveryNanos = now + backoffNanos(failureStreak);
            LOGGER.atWarn().addKeyValue("partitions", assigned.size()).addKeyValue("retryInMs", backoffNanos(failureStreak) / 1_000_000)
                    .log("output failure: pausing, rewinding to the committed offsets");
        }
        if (now < nextRecoveryNanos) {
            return;
        }
        generation.advance();
        Map<TopicPartition, List<RequestSnapshot>> restored;
        try {
            sink.reset();
            Map<TopicPartition, OffsetAndMetadata> committed = consumer.committed(assigned, RECOVERY_CALL_TIMEOUT);
            for (TopicPartition tp : assigned) {
                OffsetAndMetadata c = committed.get(tp);
                long to = c != null ? c.offset() : offsets.firstStarted(tp);
                if (to >= 0) {
                    consumer.seek(tp, to);
                }
            }
            restored = readState(assigned);
        } catch (RuntimeException e) {
            failureStreak++;
            nextRecoveryNanos = now + backoffNanos(failureStreak);
            LOGGER.atWarn().addKeyValue("streak", failureStreak).addKeyValue("retryInMs", backoffNanos(failureStreak) / 1_000_000)
                    .log("recovery not possible yet: {}", e.toString());
            return;
        }
        transactions.ifPresent(t -> t.drop(assigned));
        offsets.remove(assigned);
        acks.clear();
        engine.forget(Set.copyOf(assigned));
        restored.forEach(this::restore);
        inflightTokens.set(0);
        metrics.inflightTokens.set(0);
        metrics.recoveries.inc();
        paused = false;
        metrics.pausedPartitions.set(0);
        rewindPending = false;
        loopFailed = false;
        lastRecoveredNanos = time.nanoseconds();
        consumer.resume(consumer.paused());
        LOGGER.atWarn().addKeyValue("partitions", assigned.size()).addKeyValue("generation", generation.current())
                .log("recovered: partitions rewound to the committed offsets, their records are processed again");
    }

    /** The request state of these partitions as of the positions the consumer resumes from (none without a state topic). */
    private Map<TopicPartition, List<RequestSnapshot>> readState(Collection<TopicPartition> partitions) {
        if (state.isEmpty() || partitions.isEmpty()) {
            return Map.of();
        }
        Map<TopicPartition, Long> resumeAt = new HashMap<>();
        for (TopicPartition tp : partitions) {
            resumeAt.put(tp, consumer.position(tp, RECOVERY_CALL_TIMEOUT));
        }
        return state.get().read(resumeAt);
    }

    /** Hands read-back state to the engine: queued before any record of the partition, so in force for its first one. */
    private void restore(TopicPartition partition, List<RequestSnapshot> snapshots) {
        if (!snapshots.isEmpty()) {
            engine.restore(partition, snapshots);
            metrics.stateRestored.inc(snapshots.size());
        }
    }

    /** No wait for a first failure, then 0.5 s doubling up to 30 s. */
    static long backoffNanos(int streak) {
        return streak == 0 ? 0 : TimeUnit.MILLISECONDS.toNanos(Math.min(30_000, 500L << Math.min(6, streak - 1)));
    }

    private void drainAcks() {
        // The signals of the acknowledgements taken in below: without this the permits (one per record) would pile up
        // while the loop never pauses, until Semaphore.release overflows after 2^31 records.
        ackSignal.drainPermits();
        if (transactions.isPresent() && !rewindPending) {
            // Exactly-once: finished records leave the pipeline when their transaction commits.
            inflightTokens.addAndGet(-transactions.get().commit(offsets, consumer));
        }
        for (Source a; (a = acks.poll()) != null; ) {
            if (generation.stale(a.generation()) || !a.hasOffset()) {
                continue; // consumed again since the last recovery (its tokens left the count then), or no record's output
            }
            offsets.finished(a.partition(), a.offset());
            if (a.tokens() > 0) {
                inflightTokens.addAndGet(-a.tokens());
            }
        }
        metrics.inflightTokens.set(inflightTokens.get());
    }

    /**
     * Pauses every partition above {@code max_inflight_tokens} and resumes at {@code resume_inflight_tokens}. While the
     * engine cannot keep up this cycles several times a second, so only the first pause of a minute is logged at INFO
     * (with how many pauses the minute before had); the rest at DEBUG. {@code saeguard_paused_partitions} shows the
     * state. Under sustained overload Kafka then serves the partitions by its per-partition fetch quota, not by age:
     * in the benchmark the busiest partitions' records waited up to 3.6 times as long as the quietest's
     * (bench/README.md, 2026-11-23).
     */
    private void backpressure() {
        long inflight = inflightTokens.get();
        if (!paused && inflight > batching.maxInflightTokens()) {
            paused = true;
            consumer.pause(consumer.assignment());
            metrics.pausedPartitions.set(consumer.assignment().size());
            long now = time.nanoseconds();
            if (now - lastPauseLog >= PAUSE_LOG_INTERVAL_NANOS) {
                LOGGER.atInfo().addKeyValue("inflightTokens", inflight).addKeyValue("pausesSinceLastLog", pausesNotLogged)
                        .log("backpressure: paused all partitions, still polling (further pauses this minute at DEBUG)");
                lastPauseLog = now;
                pausesNotLogged = 0;
            } else {
                pausesNotLogged++;
                LOGGER.atDebug().addKeyValue("inflightTokens", inflight).log("backpressure: paused all partitions, still polling");
            }
        } else if (paused && inflight <= batching.resumeInflightTokens()) {
            paused = false;
            consumer.resume(consumer.paused());
            metrics.pausedPartitions.set(0);
            LOGGER.atDebug().addKeyValue("inflightTokens", inflight).log("backpressure: resumed");
        }
    }

    private void commitIfDue(boolean sync) {
        if (transactions.isPresent()) {
            return; // offsets are committed inside the transactions (drainAcks)
        }
        long now = time.nanoseconds();
        if (!sync && now - lastCommit < COMMIT_INTERVAL_NANOS) {
            return;
        }
        lastCommit = now;
        if (sink.failed() || rewindPending) {
            return; // something was not written: commit nothing more; the recovery rewinds to the committed offsets
        }
        Map<TopicPartition, OffsetAndMetadata> toCommit = offsets.toCommit();
        if (toCommit.isEmpty()) {
            return;
        }
        if (sync) {
            try {
                consumer.commitSync(toCommit);
                offsets.committed(toCommit);
            } catch (RuntimeException e) {
                LOGGER.warn("synchronous commit failed: {}", e.toString());
            }
        } else {
            consumer.commitAsync(toCommit, (o, e) -> {
                if (e == null) {
                    offsets.committed(o);
                } else {
                    LOGGER.atWarn().log("async commit failed (retried at the next commit): {}", e.toString());
                }
            });
        }
    }

    private String positions(Collection<TopicPartition> partitions) {
        StringBuilder sb = new StringBuilder();
        for (TopicPartition tp : partitions) {
            sb.append(tp.partition()).append('=').append(consumer.position(tp)).append(' ');
        }
        return sb.toString();
    }

    /** Runs on the poll thread, inside poll(). */
    private final class Rebalance implements ConsumerRebalanceListener {
        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
            if (partitions.isEmpty()) {
                return;
            }
            // Let the records of these partitions that are already in the pipeline finish (bounded), so
            // the new owner does not process them again: fewer duplicates on every rebalance.
            long deadline = time.nanoseconds() + Math.min(drainTimeout.toNanos(), REVOKE_DRAIN_NANOS);
            drainAcks();
            while (offsets.unfinished(partitions) > 0 && time.nanoseconds() < deadline) {
                time.sleep(5); // Time.SYSTEM keeps the interrupt flag set on an interrupt
                if (Thread.currentThread().isInterrupted()) {
                    break;
                }
                drainAcks();
            }
            Map<TopicPartition, OffsetAndMetadata> toCommit = offsets.toCommit();
            toCommit.keySet().retainAll(new HashSet<>(partitions));
            if (transactions.isPresent()) {
                inflightTokens.addAndGet(-transactions.get().drop(partitions));
            } else if (!toCommit.isEmpty() && !sink.failed() && !rewindPending) {
                try {
                    consumer.commitSync(toCommit);
                } catch (RuntimeException e) {
                    LOGGER.warn("commit on revoke failed: {}", e.toString());
                }
            }
            offsets.remove(partitions);
            engine.forget(Set.copyOf(partitions));
            metrics.pausedPartitions.set(consumer.paused().stream().filter(tp -> !partitions.contains(tp)).count());
            LOGGER.atInfo().addKeyValue("partitions", partitions.size()).addKeyValue("committed", toCommit)
                    .log("partitions revoked; their request state dropped");
        }

        @Override
        public void onPartitionsLost(Collection<TopicPartition> partitions) {
            transactions.ifPresent(t -> inflightTokens.addAndGet(-t.drop(partitions)));
            offsets.remove(partitions);
            engine.forget(Set.copyOf(partitions));
            metrics.pausedPartitions.set(consumer.paused().stream().filter(tp -> !partitions.contains(tp)).count());
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
            // Before any record of these partitions is fetched: the engine holds their requests' state when the first is
            // decided. A failure leaves poll() with the exception; the loop recovers (rewinds, reads the state again).
            readState(partitions).forEach(PollLoop.this::restore);
            assigned.set(true);
            metrics.assignments.inc();
            if ((paused || rewindPending) && !partitions.isEmpty()) {
                consumer.pause(partitions);
                metrics.pausedPartitions.set(consumer.paused().size());
            }
            LOGGER.atInfo().addKeyValue("partitions", partitions.size()).addKeyValue("paused", paused)
                    .addKeyValue("positions", LOGGER.isDebugEnabled() ? positions(partitions) : "-").log("partitions assigned");
        }
    }
}
