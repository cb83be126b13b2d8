package io.saeguard.sidecar.pipeline;

import io.saeguard.detectors.ChunkOutcome;
import io.saeguard.detectors.Policy;
import io.saeguard.topics.events.Action;
import io.saeguard.topics.events.Decision;
import io.saeguard.topics.events.JudgeRequest;
import io.saeguard.topics.events.JudgeVerdict;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.OptionalLong;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.function.Function;
import org.apache.kafka.common.TopicPartition;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The pending escalations of the judge cascade (docs/architecture.md#judge-cascade): which requests an {@code escalate}
 * band sent to the judge, until the judge's verdict arrives or the band's {@code judge_timeout_ms} passes.
 *
 * <ul>
 *   <li>{@link #escalate}: a record's outcome carries an escalation and its request has none pending and had none
 *       settled: the request becomes pending (deadline = now + timeout) and the {@link JudgeRequest} to publish with the
 *       record's decision is returned. One escalation per request: later escalating chunks only flag.</li>
 *   <li>{@link #seen}: every decision of a pending request moves its last seq on, so the verdict numbers after it.</li>
 *   <li>{@link #verdict}: a verdict for a pending request (same detector) settles it and becomes the request's next
 *       decision ({@link DetectorEngine#takeSeq}, else the last seq seen plus one) with the judge's action and reason. A
 *       verdict for a request settled before (answered, or fallen back at its timeout) is late; for any other request
 *       it is unknown: both are refused, to be dead-lettered.</li>
 *   <li>{@link #expire}: each pending request past its deadline settles with its band's fallback as the next decision.</li>
 * </ul>
 *
 * <p>Pending escalations live in this replica's memory, like request state: a revoked partition's or a recovery's
 * ({@link #forget}) are dropped, and so is everything on a crash. Their verdicts are then dead-lettered as unknown and
 * no fallback follows; the escalating decision (a {@code flag}) stands. Both maps are bounded by {@code state.max_requests}
 * (the oldest leaves first).
 *
 * <p>Not thread-safe: the engine thread owns it. Time is the engine's clock, passed in, so it is tested without waiting.
 */
final class JudgeCascade {
    private static final Logger LOGGER = LoggerFactory.getLogger(JudgeCascade.class);
    /** Excerpts sent to the judge are cut here (the judge-request schema says so): a prompt can be megabytes. */
    static final int MAX_EXCERPT_CHARS = 4000;

    private record Pending(String detector, long position, long deadlineMs, Policy.Escalation escalation, TopicPartition partition,
            long lastSeq, OptionalInt replyPartition) {
    }

    private record Deadline(long ms, String requestId) {
    }

    /** What became of a verdict. */
    sealed interface Outcome {
        /** It answered a pending escalation: publish this decision (to the escalating record's reply partition, if it named one). */
        record Decided(Decision decision, OptionalInt replyPartition) implements Outcome {
        }

        /** It cannot be applied: dead-letter it with this reason and explanation. */
        record Refused(FailureReason reason, String why) implements Outcome {
        }
    }

    /** A fallback decision, with the partition of the request's escalating record (its output goes with that partition). */
    record Fallback(TopicPartition partition, Decision decision, OptionalInt replyPartition) {
    }

    private final int cap;
    private final Function<String, OptionalLong> seqs;
    private final Map<String, Pending> pending = new LinkedHashMap<>();
    /** Deadlines in order; an entry whose request is no longer pending with that deadline is skipped (lazy removal). */
    private final PriorityQueue<Deadline> deadlines = new PriorityQueue<>(Comparator.comparingLong(Deadline::ms));
    private final Map<String, Boolean> settled;

    /**
     * @param cap  the most requests held pending, and the most remembered as settled
     * @param seqs the detector engine's next seq for a request it still holds ({@link io.saeguard.detectors.DetectorEngine#takeSeq})
     */
    JudgeCascade(int cap, Function<String, OptionalLong> seqs) {
        this.cap = cap;
        this.seqs = Objects.requireNonNull(seqs, "seqs");
        this.settled = new LinkedHashMap<>(16, 0.75f, false) {
            private static final long serialVersionUID = 1L;

            @Override
            protected boolean removeEldestEntry(Map.Entry<String, Boolean> eldest) {
                return size() > cap;
            }
        };
    }

    /**
     * Starts an escalation for a decided record when its outcome asks for one (and its request has none pending and none
     * settled); returns the request for judgement to publish with the record's decision.
     *
     * @param excerpt the text of the record's prompt event, when it had one
     */
    Optional<JudgeRequest> escalate(ChunkOutcome outcome, TopicPartition partition, OptionalInt replyPartition, Optional<String> excerpt,
            long nowMs) {
        Decision d = outcome.decision();
        seen(d.requestId(), d.seq());
        if (outcome.escalation().isEmpty() || pending.containsKey(d.requestId()) || settled.containsKey(d.requestId())) {
            return Optional.empty();
        }
        Policy.Escalation e = outcome.escalation().get();
        if (pending.size() >= cap) {
            Iterator<Map.Entry<String, Pending>> eldest = pending.entrySet().iterator();
            String dropped = eldest.next().getKey();
            eldest.remove();
            LOGGER.atWarn().addKeyValue("request", dropped).addKeyValue("cap", cap)
                    .log("too many pending judge escalations: dropped the oldest; its verdict will be dead-lettered, no fallback follows");
        }
        String detector = d.detector().orElseThrow();
        pending.put(d.requestId(), new Pending(detector, d.position(), nowMs + e.timeoutMs(), e, partition, d.seq(), replyPartition));
        deadlines.add(new Deadline(nowMs + e.timeoutMs(), d.requestId()));
        Optional<String> cut = excerpt.map(t -> t.length() > MAX_EXCERPT_CHARS ? t.substring(0, MAX_EXCERPT_CHARS) : t);
        return Optional.of(new JudgeRequest(d.requestId(), d.seq(), detector, d.score(), d.position(), d.features(), cut, e.timeoutMs(),
                e.fallback(), nowMs));
    }

    /** A decision of this request was made with {@code seq}: a verdict or fallback numbers after it. */
    void seen(String requestId, long seq) {
        Pending p = pending.get(requestId);
        if (p != null && seq > p.lastSeq()) {
            pending.put(requestId, new Pending(p.detector(), p.position(), p.deadlineMs(), p.escalation(), p.partition(), seq, p.replyPartition()));
        }
    }

    /** Applies a judge's verdict (see the class doc). */
    Outcome verdict(JudgeVerdict v, long nowMs) {
        Pending p = pending.get(v.requestId());
        if (p == null) {
            return settled.containsKey(v.requestId())
                    ? new Outcome.Refused(FailureReason.LATE_VERDICT, "request '" + v.requestId() + "' has no pending escalation any more: "
                            + "it was already decided by a verdict or by its fallback at judge_timeout_ms; answer within the band's timeout")
                    : new Outcome.Refused(FailureReason.UNKNOWN_REQUEST, "no escalation is pending for request '" + v.requestId()
                            + "' on this replica (never escalated, or its state was dropped by a restart or rebalance)");
        }
        if (!p.detector().equals(v.detector())) {
            return new Outcome.Refused(FailureReason.UNKNOWN_REQUEST, "request '" + v.requestId() + "' was escalated by detector '"
                    + p.detector() + "', but the verdict names '" + v.detector() + "'; copy the detector from the judge request");
        }
        pending.remove(v.requestId());
        settled.put(v.requestId(), Boolean.TRUE);
        String reason = "judge" + v.judge().map(j -> " " + j).orElse("") + ": " + v.reason();
        return new Outcome.Decided(decision(v.requestId(), p, v.action(), reason, nowMs), p.replyPartition());
    }

    /** Settles every pending escalation past its deadline with its fallback, earliest deadline first. */
    List<Fallback> expire(long nowMs) {
        List<Fallback> out = List.of();
        while (!deadlines.isEmpty() && deadlines.peek().ms() <= nowMs) {
            Deadline due = deadlines.poll();
            Pending p = pending.get(due.requestId());
            if (p == null || p.deadlineMs() != due.ms()) {
                continue; // answered, forgotten or evicted since
            }
            pending.remove(due.requestId());
            settled.put(due.requestId(), Boolean.TRUE);
            if (out.isEmpty()) {
                out = new ArrayList<>(2);
            }
            Action fallback = p.escalation().fallback();
            out.add(new Fallback(p.partition(), decision(due.requestId(), p, fallback, "no judge verdict within "
                    + p.escalation().timeoutMs() + " ms: fallback " + fallback.wireName(), nowMs), p.replyPartition()));
        }
        if (pending.isEmpty()) {
            deadlines.clear();
        }
        return out;
    }

    /** Drops the pending escalations of requests escalated from these partitions (revoked, or rewound by a recovery). */
    int forget(Set<TopicPartition> partitions) {
        int before = pending.size();
        pending.values().removeIf(p -> partitions.contains(p.partition()));
        return before - pending.size();
    }

    /** Requests waiting for a verdict now. */
    int pending() {
        return pending.size();
    }

    private Decision decision(String requestId, Pending p, Action action, String reason, long nowMs) {
        long seq = seqs.apply(requestId).orElse(p.lastSeq() + 1);
        return Decision.builder(requestId, seq, action, p.position()).detector(p.detector()).reason(reason).ts(nowMs).build();
    }
}
