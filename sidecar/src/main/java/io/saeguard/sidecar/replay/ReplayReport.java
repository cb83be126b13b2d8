package io.saeguard.sidecar.replay;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.saeguard.sidecar.kafka.HistoryReader;
import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalLong;
import java.util.TreeMap;

/**
 * What {@code saeguard replay} found: the comparison, the records production would have dead-lettered (not decided),
 * and the partitions whose history may have been deleted before the stretch ({@code REPORT.json}, and a Markdown
 * rendering). The JSON's keys are documented in the README's command list.
 */
public final class ReplayReport {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private final long fromMs;
    private final OptionalLong toMs;
    private final DecisionComparison.Result result;
    private final Map<String, Long> deadLettered;
    private final List<HistoryReader.PartitionRange> ranges;
    private final Map<String, DecisionComparison.DetectorCounts> detectors;

    /**
     * @param deadLettered per dead-letter reason, the records not decided
     * @param ranges       the stretch read from the input topics
     * @param liveDetectors the config's live detectors, listed in the breakdown even where they decided nothing
     */
    public ReplayReport(long fromMs, OptionalLong toMs, DecisionComparison.Result result, Map<String, Long> deadLettered,
            List<HistoryReader.PartitionRange> ranges, List<String> liveDetectors) {
        this.fromMs = fromMs;
        this.toMs = toMs;
        this.result = result;
        this.deadLettered = new TreeMap<>(deadLettered);
        this.ranges = List.copyOf(ranges);
        Map<String, DecisionComparison.DetectorCounts> d = new TreeMap<>(result.detectors());
        liveDetectors.forEach(id -> d.putIfAbsent(id, new DecisionComparison.DetectorCounts(0, 0, 0)));
        this.detectors = d;
    }

    public DecisionComparison.Result result() {
        return result;
    }

    /** Records read: decided, plus those production would have dead-lettered. */
    public long records() {
        return result.records() + deadLettered.values().stream().mapToLong(Long::longValue).sum();
    }

    private long pastRetentionAtMost() {
        return ranges.stream().filter(HistoryReader.PartitionRange::pastRetention).mapToLong(HistoryReader.PartitionRange::logStart).sum();
    }

    public String json() {
        ObjectNode root = JSON.createObjectNode();
        root.put("from", Instant.ofEpochMilli(fromMs).toString());
        root.put("from_ms", fromMs);
        if (toMs.isPresent()) {
            root.put("to", Instant.ofEpochMilli(toMs.getAsLong()).toString());
            root.put("to_ms", toMs.getAsLong());
        }
        root.put("records", records());
        root.put("decided", result.records());
        root.put("compared", result.compared());
        if (result.agreement().isPresent()) {
            root.put("agreement", result.agreement().get());
        } else {
            root.putNull("agreement");
        }
        ArrayNode changed = root.putArray("changed");
        for (DecisionComparison.Change c : result.changed()) {
            ObjectNode o = changed.addObject();
            o.put("request_id", c.record().requestId());
            o.put("position", c.record().position());
            o.put("seq", c.after().seq());
            o.put("before", c.before().action().wireName());
            o.put("after", c.after().action().wireName());
            c.before().detector().ifPresent(d -> o.put("before_detector", d));
            c.after().detector().ifPresent(d -> o.put("after_detector", d));
            c.before().score().ifPresent(s -> o.put("before_score", s));
            c.after().score().ifPresent(s -> o.put("after_score", s));
            o.put("topic", c.record().topic());
            o.put("partition", c.record().partition());
            o.put("offset", c.record().offset());
        }
        ObjectNode ds = root.putObject("detectors");
        detectors.forEach((id, n) -> {
            ObjectNode o = ds.putObject(id);
            o.put("decided_before", n.before());
            o.put("decided_after", n.after());
            o.put("changed", n.changed());
        });
        ObjectNode not = root.putObject("not_compared");
        result.notCompare().forEach(not::put);
        ObjectNode dead = not.putObject("dead_lettered");
        deadLettered.forEach(dead::put);
        ObjectNode past = not.putObject("past_retention");
        past.put("records_at_most", pastRetentionAtMost());
        ArrayNode parts = past.putArray("partitions");
        for (HistoryReader.PartitionRange r : ranges) {
            if (r.pastRetention()) {
                parts.addObject().put("topic", r.partition().topic()).put("partition", r.partition().partition()).put("log_start_offset", r.logStart());
            }
        }
        try {
            return JSON.writeValueAsString(root) + "\n";
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    public String markdown() {
        StringBuilder m = new StringBuilder("# Replay\n\n");
        m.append("Stretch: from ").append(Instant.ofEpochMilli(fromMs)).append(" to ")
                .append(toMs.isPresent() ? Instant.ofEpochMilli(toMs.getAsLong()).toString() : "the end at the start of the replay").append(".\n\n");
        m.append(summary()).append("\n\n");
        m.append("## Per detector (compared records)\n\n| detector | decided before | decided after | in changed records |\n|---|---:|---:|---:|\n");
        detectors.forEach((id, n) -> m.append("| ").append(id).append(" | ").append(n.before()).append(" | ").append(n.after()).append(" | ")
                .append(n.changed()).append(" |\n"));
        m.append("\n## Not compared\n\n| why | records |\n|---|---:|\n");
        result.notCompare().forEach((k, v) -> m.append("| ").append(k).append(" | ").append(v).append(" |\n"));
        deadLettered.forEach((k, v) -> m.append("| dead-lettered: ").append(k).append(" | ").append(v).append(" |\n"));
        m.append("| past retention (at most) | ").append(pastRetentionAtMost()).append(" |\n");
        m.append("\n## Changed\n\n");
        if (result.changed().isEmpty()) {
            m.append("Nothing changed.\n");
        } else {
            m.append("| request | position | seq | before | after | detector before | detector after |\n|---|---:|---:|---|---|---|---|\n");
            for (DecisionComparison.Change c : result.changed()) {
                m.append("| ").append(c.record().requestId()).append(" | ").append(c.record().position()).append(" | ").append(c.after().seq())
                        .append(" | ").append(c.before().action().wireName()).append(" | ").append(c.after().action().wireName()).append(" | ")
                        .append(c.before().detector().orElse("-")).append(" | ").append(c.after().detector().orElse("-")).append(" |\n");
            }
        }
        return m.toString();
    }

    /** One line for stdout. */
    public String summary() {
        String agreement = result.agreement().map(a -> String.format(Locale.ROOT, "%.4f", a)).orElse("n/a (nothing compared)");
        long notCompared = result.notCompare().values().stream().mapToLong(Long::longValue).sum();
        long dead = deadLettered.values().stream().mapToLong(Long::longValue).sum();
        return String.format(Locale.ROOT, "%d records, %d decided, %d compared: agreement %s, %d changed; not compared: %d (%s), %d dead-lettered%s",
                records(), result.records(), result.compared(), agreement, result.changed().size(), notCompared, result.notCompare(), dead,
                pastRetentionAtMost() > 0 ? ", up to " + pastRetentionAtMost() + " past retention" : "");
    }
}
