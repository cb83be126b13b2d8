package io.saeguard.sidecar.review;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.saeguard.topics.DecodeException;
import io.saeguard.topics.events.Alert;
import io.saeguard.topics.events.EventCodec;
import io.saeguard.topics.events.PromptEvent;
import io.saeguard.topics.events.Review;
import io.saeguard.topics.events.Verdict;
import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code saeguard reviews export}: the reviewed alerts as labelled examples, in the JSONL that {@code eval} and
 * {@code select --data} read ({@code LabelledTextReader}), so a false positive becomes a hard negative for the next
 * selection and a regression case for {@code eval} (issue 23).
 *
 * <p>Labels: {@code true_positive} → {@code "label": true} (the detector's concept), {@code false_positive} →
 * {@code "label": false} (a hard negative); {@code unsure} is skipped and counted. Each line is
 * {@code {"text", "label", "group": <detector>, "detector", "alert_id", "verdict", "reviewer", "time"}}: {@code group}
 * is the detector, so eval's per-group breakdown separates the detectors' reviews; the note is not exported.
 *
 * <p>Sources, each read once from its beginning to the end it had when the export started, without a consumer group:
 * the reviews topic (the latest verdict per alert whose time is in {@code [from, to)}), the alerts topic (each reviewed
 * alert's excerpt) and the prompts topic (the text of each reviewed request). The text of an alert is its request's
 * prompt event: the only one, or, when the request had several, the one holding the alert's excerpt; an alert whose
 * request has no prompt event left (activation-only traffic, or past the prompts topic's 7-day retention) or whose event
 * cannot be told is skipped and counted. Memory: the reviews in the window and the texts of their requests.
 *
 * <p>Not thread-safe: one export at a time on the calling thread.
 */
public final class ReviewExport {
    private static final Logger LOGGER = LoggerFactory.getLogger(ReviewExport.class);
    private static final EventCodec CODEC = new EventCodec();
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Opens a reader of one whole topic; the export closes it. */
    public interface Readers {
        org.apache.kafka.clients.consumer.Consumer<String, byte[]> open();
    }

    /** The topics an export reads. */
    public record Topics(String reviews, String alerts, String prompts) {
    }

    /**
     * What an export wrote and what it skipped.
     *
     * @param positives lines with {@code "label": true}
     * @param negatives lines with {@code "label": false}
     * @param unsure    verdicts {@code unsure}, not exported
     * @param noText    reviewed alerts whose request's text was not found, not exported
     */
    public record Summary(int positives, int negatives, int unsure, int noText) {
    }

    private final Readers readers;
    private final Topics topics;
    private final Duration timeout;

    public ReviewExport(Readers readers, Topics topics, Duration timeout) {
        this.readers = readers;
        this.topics = topics;
        this.timeout = timeout;
    }

    /** Writes the reviews given in {@code [from, to)} to {@code out} as labelled JSONL. */
    public Summary export(Instant from, Instant to, Path out) throws IOException {
        Map<String, Review> reviews = reviews(from, to);
        Map<String, List<Review>> byRequest = new LinkedHashMap<>();
        int unsure = 0;
        for (Review r : reviews.values()) {
            if (r.verdict() == Verdict.UNSURE) {
                unsure++;
            } else {
                byRequest.computeIfAbsent(r.requestId(), k -> new ArrayList<>()).add(r);
            }
        }
        Map<String, String> excerpts = new HashMap<>();
        readAll(topics.alerts(), rec -> {
            if (rec.key() != null && byRequest.containsKey(rec.key()) && rec.value() != null) {
                try {
                    Alert a = CODEC.decodeAlert(rec.value());
                    a.excerpt().ifPresent(e -> excerpts.put(Review.alertId(a.requestId(), a.seq()), e));
                } catch (DecodeException e) {
                    // not an alert: nothing to learn from it
                }
            }
        });
        Map<String, List<String>> texts = new HashMap<>();
        readAll(topics.prompts(), rec -> {
            if (rec.key() != null && byRequest.containsKey(rec.key()) && rec.value() != null) {
                try {
                    PromptEvent p = CODEC.decodePrompt(rec.value());
                    texts.computeIfAbsent(p.requestId(), k -> new ArrayList<>()).add(p.text());
                } catch (DecodeException e) {
                    // the sidecar dead-lettered it too
                }
            }
        });
        int positives = 0;
        int negatives = 0;
        int noText = 0;
        Path parent = out.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        try (BufferedWriter w = Files.newBufferedWriter(out, StandardCharsets.UTF_8)) {
            for (List<Review> rs : byRequest.values()) {
                for (Review r : rs) {
                    Optional<String> text = textOf(texts.getOrDefault(r.requestId(), List.of()), Optional.ofNullable(excerpts.get(r.alertId())));
                    if (text.isEmpty()) {
                        noText++;
                        continue;
                    }
                    boolean label = r.verdict() == Verdict.TRUE_POSITIVE;
                    ObjectNode line = JSON.createObjectNode().put("text", text.get()).put("label", label).put("group", r.detector())
                            .put("detector", r.detector()).put("alert_id", r.alertId()).put("verdict", r.verdict().wireName())
                            .put("reviewer", r.reviewer()).put("time", r.time());
                    w.write(line.toString());
                    w.write('\n');
                    if (label) {
                        positives++;
                    } else {
                        negatives++;
                    }
                }
            }
        }
        Summary s = new Summary(positives, negatives, unsure, noText);
        LOGGER.atInfo().addKeyValue("out", out).addKeyValue("positives", positives).addKeyValue("negatives", negatives)
                .addKeyValue("unsure", unsure).addKeyValue("noText", noText).log("reviews exported");
        return s;
    }

    /** The latest verdict per alert (by offset) whose time is in {@code [from, to)}, tombstones removing it. */
    Map<String, Review> reviews(Instant from, Instant to) {
        Map<String, Review> latest = new LinkedHashMap<>();
        readAll(topics.reviews(), rec -> {
            if (rec.key() == null) {
                return;
            }
            if (rec.value() == null) {
                latest.remove(rec.key());
                return;
            }
            try {
                Review r = CODEC.decodeReview(rec.value());
                if (r.alertId().equals(rec.key())) {
                    latest.remove(rec.key()); // re-inserted last: the file follows the order verdicts were given
                    latest.put(rec.key(), r);
                }
            } catch (DecodeException e) {
                LOGGER.atWarn().addKeyValue("topic", rec.topic()).addKeyValue("offset", rec.offset()).log("review record skipped: {}", e.getMessage());
            }
        });
        latest.values().removeIf(r -> r.time() < from.toEpochMilli() || r.time() >= to.toEpochMilli());
        return latest;
    }

    /** The request's prompt text: its only event, else the one holding the alert's excerpt (without its ellipses). */
    static Optional<String> textOf(List<String> events, Optional<String> excerpt) {
        if (events.size() == 1) {
            return Optional.of(events.get(0));
        }
        if (excerpt.isEmpty()) {
            return Optional.empty();
        }
        String core = excerpt.get().replace("…", "").strip();
        List<String> holding = events.stream().filter(t -> t.contains(core)).distinct().toList();
        return holding.size() == 1 ? Optional.of(holding.get(0)) : Optional.empty();
    }

    /** Reads every partition of {@code topic} from its beginning to the end offsets it had when this started. */
    void readAll(String topic, Consumer<ConsumerRecord<String, byte[]>> each) {
        try (org.apache.kafka.clients.consumer.Consumer<String, byte[]> consumer = readers.open()) {
            List<TopicPartition> partitions = consumer.partitionsFor(topic, timeout).stream()
                    .map(p -> new TopicPartition(p.topic(), p.partition())).toList();
            if (partitions.isEmpty()) {
                throw new IllegalStateException("topic '" + topic + "' does not exist on this cluster: check --bootstrap and the topic names "
                        + "(--topic ROLE=NAME)");
            }
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            Map<TopicPartition, Long> end = consumer.endOffsets(partitions, timeout);
            long deadline = System.nanoTime() + timeout.toNanos();
            while (end.entrySet().stream().anyMatch(e -> consumer.position(e.getKey()) < e.getValue())) {
                boolean any = false;
                for (ConsumerRecord<String, byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                    any = true;
                    if (r.offset() < end.get(new TopicPartition(r.topic(), r.partition()))) {
                        each.accept(r);
                    }
                }
                if (any) {
                    deadline = System.nanoTime() + timeout.toNanos();
                } else if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("reading '" + topic + "' made no progress for " + timeout.toSeconds()
                            + " s before its end; check the broker");
                }
            }
        }
    }
}
