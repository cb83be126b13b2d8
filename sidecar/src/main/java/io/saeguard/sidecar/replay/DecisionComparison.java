package io.saeguard.sidecar.replay;

import io.saeguard.topics.events.Decision;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;

/**
 * Matches the replay's decisions with the decisions production recorded for the same records, and counts what changed.
 *
 * <p><b>Which recorded decision belongs to a record.</b> A decision names its request and the position of the chunk's
 * first token, not the record's offset (topics/schemas/decision.schema.json), so a record is matched by request id and
 * position: the k-th replayed record of a (request, position) takes the k-th recorded decision of that pair, in the
 * decisions topic's order (a request's decisions share one partition). A decision repeated by an at-least-once
 * redelivery has the same request, position and {@code seq} as the first one (docs/architecture.md#delivery) and is
 * counted once.
 *
 * <p><b>When a match is not compared.</b> Both sides count a request's chunks in {@code seq}. A recorded {@code seq}
 * above the replay's means production had decided chunks of the request before the replayed stretch began, so its
 * request state (the aggregation across chunks) held more than the replay's: {@code request_started_before_window}.
 * A recorded {@code seq} below the replay's means production had dropped the request's state in between (idle TTL,
 * the cap, a rebalance or recovery): {@code request_state_reset}. A record with no recorded decision left (the decision
 * is past the decisions topic's retention, or was never written) is {@code decision_missing}. Everything else is
 * compared by action.
 *
 * <p>Not thread-safe; one comparison per instance.
 */
public final class DecisionComparison {
    /** Why a replayed record was not compared; the JSON report's keys. */
    public static final String DECISION_MISSING = "decision_missing";
    public static final String STARTED_BEFORE_WINDOW = "request_started_before_window";
    public static final String STATE_RESET = "request_state_reset";

    /**
     * A record whose action changed.
     *
     * @param before the recorded decision
     * @param after  the replay's
     */
    public record Change(ReplayedRecord record, Decision before, Decision after) {
    }

    /**
     * Per detector, over the compared records: how many decisions it made before (recorded) and after (replayed), and in
     * how many changed records it decided on either side.
     */
    public record DetectorCounts(long before, long after, long changed) {
    }

    /**
     * The comparison.
     *
     * @param records    records replayed (decided)
     * @param compared   those matched with a recorded decision and compared
     * @param changed    the compared records whose action differs, in replay order
     * @param detectors  per detector id, sorted
     * @param notCompare per reason ({@link #DECISION_MISSING}, {@link #STARTED_BEFORE_WINDOW}, {@link #STATE_RESET}), the
     *                   records not compared; every reason present, possibly 0
     */
    public record Result(long records, long compared, List<Change> changed, Map<String, DetectorCounts> detectors, Map<String, Long> notCompare) {
        public Result {
            changed = List.copyOf(changed);
            detectors = Collections.unmodifiableMap(new TreeMap<>(detectors));
            notCompare = Collections.unmodifiableMap(new TreeMap<>(notCompare));
        }

        /** Compared records whose action is unchanged over those compared; empty when none was compared. */
        public Optional<Double> agreement() {
            return compared == 0 ? Optional.empty() : Optional.of((compared - changed.size()) / (double) compared);
        }
    }

    private record Key(String requestId, long position) {
    }

    private record Seen(String requestId, long position, long seq) {
    }

    private final Map<Key, ArrayDeque<Decision>> recorded = new HashMap<>();
    private final Set<Seen> seen = new HashSet<>();

    /** Adds a recorded decision; call in the decisions topic's order (per partition). */
    public void addRecorded(Decision d) {
        if (seen.add(new Seen(d.requestId(), d.position(), d.seq()))) {
            recorded.computeIfAbsent(new Key(d.requestId(), d.position()), k -> new ArrayDeque<>()).add(d);
        }
    }

    /** Compares the replayed records, in the order the replay decided them, with the recorded decisions added. */
    public Result compare(List<ReplayedRecord> replayed) {
        long compared = 0;
        List<Change> changed = new ArrayList<>();
        Map<String, long[]> perDetector = new TreeMap<>();
        Map<String, Long> notCompared = new TreeMap<>(Map.of(DECISION_MISSING, 0L, STARTED_BEFORE_WINDOW, 0L, STATE_RESET, 0L));
        for (ReplayedRecord r : replayed) {
            ArrayDeque<Decision> q = recorded.get(new Key(r.requestId(), r.position()));
            Decision before = q == null ? null : q.poll();
            Decision after = r.decision();
            String reason = before == null ? DECISION_MISSING
                    : before.seq() > after.seq() ? STARTED_BEFORE_WINDOW : before.seq() < after.seq() ? STATE_RESET : null;
            if (reason != null) {
                notCompared.merge(reason, 1L, Long::sum);
                continue;
            }
            compared++;
            before.detector().ifPresent(d -> perDetector.computeIfAbsent(d, k -> new long[3])[0]++);
            after.detector().ifPresent(d -> perDetector.computeIfAbsent(d, k -> new long[3])[1]++);
            if (before.action() != after.action()) {
                changed.add(new Change(r, before, after));
                Set<String> involved = new HashSet<>();
                before.detector().ifPresent(involved::add);
                after.detector().ifPresent(involved::add);
                involved.forEach(d -> perDetector.computeIfAbsent(d, k -> new long[3])[2]++);
            }
        }
        Map<String, DetectorCounts> detectors = new TreeMap<>();
        perDetector.forEach((id, c) -> detectors.put(id, new DetectorCounts(c[0], c[1], c[2])));
        return new Result(replayed.size(), compared, changed, detectors, notCompared);
    }
}
