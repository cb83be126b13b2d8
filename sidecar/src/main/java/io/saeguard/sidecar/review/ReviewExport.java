package io.saeguard.sidecar.review;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.saeguard.topics.DecodeException;
import io.saeguard.topics.activation.ActivationChunk;
import io.saeguard.topics.activation.ActivationCodec;
import io.saeguard.topics.safetensors.SafetensorsWriter;
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
 * <p><b>Activations</b> (optional): the activations topic's records of the exported requests, at the alert's SAE (or its
 * model and hook), are written per detector as {@code <dir>/<detector>.positive.safetensors} and
 * {@code <dir>/<detector>.negative.safetensors}, the files {@code select --positive/--negative} read:
 * {@code activations} F32 {@code [tokens, d_in]} and {@code request} I32 {@code [tokens]} (which example, from 0, in
 * the order of the JSONL's lines of that detector and label), metadata {@code detector}, {@code label} and
 * {@code alert_ids} (comma-separated). Requests seen only as prompt events have no activation records (the sidecar
 * computes their hidden states itself), and activations are kept for a day: such requests are counted, not written.
 * Memory: every token of those requests, as F32.
 *
 * <p>Not thread-safe: one export at a time on the calling thread.
 */
public final class ReviewExport {
    private static final Logger LOGGER = LoggerFactory.getLogger(ReviewExport.class);
    private static final EventCodec CODEC = new EventCodec();
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Opens a reader of {@code topic}; the export closes it. */
    public interface Readers {
        org.apache.kafka.clients.consumer.Consumer<String, byte[]> open(String topic);
    }

    /** The topics an export reads. */
    public record Topics(String reviews, String alerts, String prompts, String activations) {
    }

    /** Where an alert's activations were read: its SAE, else its model and hook (any, where absent). */
    private record Source(Optional<String> sae, Optional<String> model, Optional<String> hook) {
        boolean matches(ActivationChunk c) {
            if (sae.isPresent() && c.sae().isPresent()) {
                return sae.equals(c.sae());
            }
            return (model.isEmpty() || model.equals(c.model())) && (hook.isEmpty() || hook.equals(c.hook()));
        }
    }

    /** The examples of one activations file: a detector's positives or negatives, in line order. */
    private static final class ActivationFile {
        final List<String> alertIds = new ArrayList<>();
        final List<String> requests = new ArrayList<>();
        final List<Source> sources = new ArrayList<>();
    }

    /**
     * What an export wrote and what it skipped.
     *
     * @param positives lines with {@code "label": true}
     * @param negatives lines with {@code "label": false}
     * @param unsure    verdicts {@code unsure}, not exported
     * @param noText    reviewed alerts whose request's text was not found, not exported
     * @param activationFiles     the activation files written (none without an activations directory)
     * @param noActivations       exported examples with no activation record found (not in those files)
     */
    public record Summary(int positives, int negatives, int unsure, int noText, List<Path> activationFiles, int noActivations) {
        public Summary {
            activationFiles = List.copyOf(activationFiles);
        }
    }

    private final Readers readers;
    private final Topics topics;
    private final Duration timeout;

    public ReviewExport(Readers readers, Topics topics, Duration timeout) {
        this.readers = readers;
        this.topics = topics;
        this.timeout = timeout;
    }

    /**
     * Writes the reviews given in {@code [from, to)} to {@code out} as labelled JSONL, and, with {@code activations}, the
     * exported requests' activation records into that directory.
     */
    public Summary export(Instant from, Instant to, Path out, Optional<Path> activations) throws IOException {
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
        Map<String, Source> sources = new HashMap<>();
        readAll(topics.alerts(), rec -> {
            if (rec.key() != null && byRequest.containsKey(rec.key()) && rec.value() != null) {
                try {
                    Alert a = CODEC.decodeAlert(rec.value());
                    String key = Review.key(a.requestId(), a.seq(), a.detector());
                    a.excerpt().ifPresent(e -> excerpts.put(key, e));
                    sources.put(key, new Source(a.sae(), a.model(), a.hook()));
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
        Map<String, ActivationFile> files = new LinkedHashMap<>();
        Path parent = out.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        try (BufferedWriter w = Files.newBufferedWriter(out, StandardCharsets.UTF_8)) {
            for (List<Review> rs : byRequest.values()) {
                for (Review r : rs) {
                    Optional<String> text = textOf(texts.getOrDefault(r.requestId(), List.of()), Optional.ofNullable(excerpts.get(r.key())));
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
                    ActivationFile f = files.computeIfAbsent(r.detector() + "." + (label ? "positive" : "negative"), k -> new ActivationFile());
                    f.alertIds.add(r.alertId());
                    f.requests.add(r.requestId());
                    f.sources.add(sources.getOrDefault(r.key(), new Source(Optional.empty(), Optional.empty(), Optional.empty())));
                    if (label) {
                        positives++;
                    } else {
                        negatives++;
                    }
                }
            }
        }
        List<Path> written = new ArrayList<>();
        int noActivations = 0;
        if (activations.isPresent()) {
            noActivations = writeActivations(activations.get(), files, written);
        }
        Summary s = new Summary(positives, negatives, unsure, noText, written, noActivations);
        LOGGER.atInfo().addKeyValue("out", out).addKeyValue("positives", positives).addKeyValue("negatives", negatives)
                .addKeyValue("unsure", unsure).addKeyValue("noText", noText).addKeyValue("activationFiles", written.size())
                .addKeyValue("noActivations", noActivations).log("reviews exported");
        return s;
    }

    /** Reads the exported requests' activation records and writes one file per detector and label; returns the examples without any. */
    private int writeActivations(Path dir, Map<String, ActivationFile> files, List<Path> written) throws IOException {
        Map<String, List<ActivationChunk>> chunks = new HashMap<>();
        java.util.Set<String> wanted = new java.util.HashSet<>();
        files.values().forEach(f -> wanted.addAll(f.requests));
        readAll(topics.activations(), rec -> {
            if (rec.key() != null && wanted.contains(rec.key()) && rec.value() != null) {
                try {
                    ActivationChunk c = ActivationCodec.decode(rec.value());
                    chunks.computeIfAbsent(c.requestId(), k -> new ArrayList<>()).add(c);
                } catch (DecodeException e) {
                    // the sidecar dead-lettered it too
                }
            }
        });
        Files.createDirectories(dir);
        int missing = 0;
        for (Map.Entry<String, ActivationFile> e : files.entrySet()) {
            ActivationFile f = e.getValue();
            List<float[]> rows = new ArrayList<>();
            List<Integer> request = new ArrayList<>();
            List<String> ids = new ArrayList<>();
            int dIn = -1;
            for (int i = 0; i < f.requests.size(); i++) {
                Source source = f.sources.get(i);
                List<ActivationChunk> mine = chunks.getOrDefault(f.requests.get(i), List.of()).stream().filter(source::matches).toList();
                if (mine.isEmpty()) {
                    missing++;
                    continue;
                }
                int example = ids.size();
                ids.add(f.alertIds.get(i));
                for (ActivationChunk c : mine) {
                    if (dIn >= 0 && c.dIn() != dIn) {
                        throw new IllegalStateException("alert " + f.alertIds.get(i) + ": activation records of width " + c.dIn() + " beside width "
                                + dIn + " in " + e.getKey() + "; the alerts name no SAE or hook to tell them apart");
                    }
                    dIn = c.dIn();
                    float[] all = c.toFloatArray();
                    for (int t = 0; t < c.tokens(); t++) {
                        rows.add(java.util.Arrays.copyOfRange(all, t * dIn, (t + 1) * dIn));
                        request.add(example);
                    }
                }
            }
            if (rows.isEmpty()) {
                continue;
            }
            float[] flat = new float[rows.size() * dIn];
            for (int r = 0; r < rows.size(); r++) {
                System.arraycopy(rows.get(r), 0, flat, r * dIn, dIn);
            }
            int dot = e.getKey().lastIndexOf('.');
            Path file = dir.resolve(e.getKey() + ".safetensors");
            Files.write(file, new SafetensorsWriter().metadata("detector", e.getKey().substring(0, dot)).metadata("label", e.getKey().substring(dot + 1))
                    .metadata("alert_ids", String.join(",", ids)).addF32("activations", new long[] {rows.size(), dIn}, flat)
                    .addI32("request", new long[] {rows.size()}, request.stream().mapToInt(Integer::intValue).toArray()).toBytes());
            written.add(file);
        }
        return missing;
    }

    /** The latest verdict per alert and detector (by offset) whose time is in {@code [from, to)}, tombstones removing it. */
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
                if (r.key().equals(rec.key())) {
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
        try (org.apache.kafka.clients.consumer.Consumer<String, byte[]> consumer = readers.open(topic)) {
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
