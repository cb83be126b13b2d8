package io.saeguard.sidecar.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.saeguard.sidecar.kafka.HistoryReader;
import io.saeguard.topics.activation.ActivationChunk;
import io.saeguard.topics.activation.ActivationCodec;
import io.saeguard.topics.catalog.TopicCatalog;
import io.saeguard.topics.catalog.TopicRole;
import io.saeguard.topics.safetensors.SafetensorsWriter;
import io.saeguard.topics.safetensors.Tensor;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.utils.Utils;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code saeguard capture}: the deployment's own activation records, from a time window of the activations topic,
 * into safetensors shards that {@code train}, {@code select} and {@code encode} read. Reads without a consumer group
 * and produces nothing, so it is safe beside production.
 *
 * <p>Each shard {@code capture-NNNNN.safetensors} holds {@code activations} F32 [tokens, d_in], {@code request} I32
 * [tokens] (an index into {@code requests.tsv}, the same index in every shard), {@code position} I64 [tokens] (the
 * token's position in its request) and, when any record of the shard carried them, {@code token_ids} I32 [tokens]
 * (-1 for tokens whose record had none). {@code capture.json} says what was read, kept and skipped.
 */
@Command(name = "capture", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Writes activation records from the activations topic to safetensors shards.",
                "",
                "Reads [--from, --to) by record timestamp (offsetsForTimes), without a consumer",
                "group and without producing: safe beside production. Output: DIR/capture-*.safetensors",
                "('activations' F32, 'request', 'position', 'token_ids' when present), requests.tsv",
                "(index -> request id) and capture.json (what was read, kept and skipped).",
                "The shards are the input of 'saeguard train', 'select' and 'encode'.",
                "TIME: epoch milliseconds, ISO-8601 with a zone (2026-12-07T03:00:00Z) or a date (UTC).",
                ""})
final class CaptureCommand implements Callable<Integer> {
    @Option(names = "--bootstrap", required = true, description = "Kafka bootstrap servers, HOST:PORT[,HOST:PORT...]")
    String bootstrap;

    @Option(names = "--topic", description = "activations topic (default: the bundled topics.yaml's, saeguard.activations)")
    String topic;

    @Option(names = "--from", required = true, paramLabel = "TIME", description = "first record timestamp to read")
    String from;

    @Option(names = "--to", paramLabel = "TIME", description = "read records before this time (default: up to the end offsets at start)")
    String to;

    @Option(names = "--model", description = "keep only records whose 'model' metadata equals this")
    String model;

    @Option(names = "--hook", description = "keep only records whose 'hook' metadata equals this")
    String hook;

    @Option(names = "--sample", paramLabel = "F", defaultValue = "1.0",
            description = "keep this fraction of requests, chosen by a hash of the request id, so a request is kept whole or not at all "
                    + "(default ${DEFAULT-VALUE})")
    double sample;

    @Option(names = "--seed", defaultValue = "0", description = "salt of the request sample (default ${DEFAULT-VALUE})")
    int seed;

    @Option(names = "--shard-tokens", paramLabel = "N", defaultValue = "32768",
            description = "tokens per shard (default ${DEFAULT-VALUE}: 288 MiB of F32 at d_in 2304)")
    int shardTokens;

    @Option(names = "--max-tokens", paramLabel = "N", description = "stop after this many tokens")
    Long maxTokens;

    @Option(names = "--consumer-property", paramLabel = "KEY=VALUE", description = "extra Kafka consumer property (repeatable)")
    Map<String, String> consumerProperties = new HashMap<>();

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "output directory (must not exist or be empty)")
    Path out;

    @Override
    public Integer call() throws Exception {
        long fromMillis = CommandLineTime.parse("--from", from);
        long toMillis = to == null ? Long.MAX_VALUE : CommandLineTime.parse("--to", to);
        if (toMillis <= fromMillis) {
            throw new IllegalArgumentException("--to must be after --from (" + Instant.ofEpochMilli(fromMillis) + ")");
        }
        if (!(sample > 0 && sample <= 1)) {
            throw new IllegalArgumentException("--sample must be in (0, 1], found " + sample);
        }
        if (shardTokens < 1) {
            throw new IllegalArgumentException("--shard-tokens must be at least 1, found " + shardTokens);
        }
        prepareOut();
        String name = topic != null ? topic : TopicCatalog.bundled().get(TopicRole.ACTIVATIONS).name();
        PrintStream err = System.err;
        Shards shards = new Shards(out, shardTokens);
        Map<String, Long> skipped = new LinkedHashMap<>();
        for (String reason : List.of("malformed", "model", "hook", "sample", "width", "max_tokens")) {
            skipped.put(reason, 0L);
        }
        Span span;
        try (HistoryReader reader = new HistoryReader(bootstrap, "saeguard-capture", consumerProperties(), "check the topic name and --bootstrap")) {
            // [from, to) here; the reader's upper bound is inclusive
            List<HistoryReader.PartitionRange> ranges = reader.plan(List.of(name), fromMillis,
                    toMillis == Long.MAX_VALUE ? OptionalLong.empty() : OptionalLong.of(toMillis - 1));
            long planned = ranges.stream().mapToLong(HistoryReader.PartitionRange::size).sum();
            long[] read = {0};
            Progress progress = new Progress(err);
            // Producer clocks need not be monotonic: a record inside the offset range may still be outside the window.
            reader.read(ranges, r -> {
                if (r.timestamp() >= fromMillis && r.timestamp() < toMillis) {
                    read[0]++;
                    keep(r, shards, skipped);
                }
            }, passed -> progress.update(read[0], planned));
            progress.done();
            Map<Integer, long[]> offsets = new HashMap<>();
            ranges.forEach(r -> offsets.put(r.partition().partition(), new long[] {r.start(), r.stop()}));
            span = new Span(read[0], offsets);
        }
        shards.close();
        writeManifest(name, fromMillis, toMillis, span, shards, skipped);
        err.printf("captured %d tokens of %d requests in %d shard(s); skipped records: %s%n", shards.tokens, shards.requestIndex.size(),
                shards.written.size(), skipped);
        System.out.println(out.toAbsolutePath());
        return 0;
    }

    private void keep(ConsumerRecord<String, byte[]> r, Shards shards, Map<String, Long> skipped) {
        ActivationChunk chunk;
        try {
            chunk = ActivationCodec.decode(r.value() == null ? new byte[0] : r.value());
        } catch (Exception e) {
            skipped.merge("malformed", 1L, Long::sum);
            return;
        }
        if (model != null && !chunk.model().map(model::equals).orElse(false)) {
            skipped.merge("model", 1L, Long::sum);
            return;
        }
        if (hook != null && !chunk.hook().map(hook::equals).orElse(false)) {
            skipped.merge("hook", 1L, Long::sum);
            return;
        }
        if (sample < 1 && !sampled(chunk.requestId())) {
            skipped.merge("sample", 1L, Long::sum);
            return;
        }
        if (maxTokens != null && shards.tokens + chunk.tokens() > maxTokens) {
            skipped.merge("max_tokens", 1L, Long::sum);
            return;
        }
        try {
            shards.add(chunk);
        } catch (WidthMismatch e) {
            skipped.merge("width", 1L, Long::sum);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** A request is in the sample when its salted hash falls below the fraction: whole requests, the same on every run. */
    boolean sampled(String requestId) {
        byte[] id = (seed + ":" + requestId).getBytes(StandardCharsets.UTF_8);
        long h = Utils.toPositive(Utils.murmur2(id));
        return h < sample * 2147483648.0;
    }

    /** What a read covered: the records in the window and, per partition, the offsets it spanned. */
    private record Span(long records, Map<Integer, long[]> offsets) {
    }

    private Map<String, String> consumerProperties() {
        Map<String, String> p = new HashMap<>();
        p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, Integer.toString(16 * 1024 * 1024));
        p.putAll(consumerProperties);
        return p;
    }

    private void prepareOut() throws IOException {
        if (Files.exists(out)) {
            if (!Files.isDirectory(out)) {
                throw new IllegalArgumentException("--out " + out + " is a file: give a directory that does not exist or is empty");
            }
            try (Stream<Path> s = Files.list(out)) {
                if (s.findAny().isPresent()) {
                    throw new IllegalArgumentException("--out " + out + " is not empty: give a new directory, so shards of two captures "
                            + "never mix");
                }
            }
        }
        Files.createDirectories(out);
    }

    private void writeManifest(String name, long fromMillis, long toMillis, Span span, Shards shards,
            Map<String, Long> skipped) throws IOException {
        ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ObjectNode m = json.createObjectNode();
        m.put("topic", name);
        m.put("from", Instant.ofEpochMilli(fromMillis).toString());
        if (toMillis != Long.MAX_VALUE) {
            m.put("to", Instant.ofEpochMilli(toMillis).toString());
        }
        if (model != null) {
            m.put("model", model);
        }
        if (hook != null) {
            m.put("hook", hook);
        }
        m.put("sample", sample);
        m.put("seed", seed);
        m.put("records_read", span.records());
        m.put("records_kept", shards.records);
        m.put("tokens", shards.tokens);
        m.put("requests", shards.requestIndex.size());
        if (shards.dIn > 0) {
            m.put("d_in", shards.dIn);
        }
        ObjectNode sk = m.putObject("skipped");
        skipped.forEach(sk::put);
        shards.written.forEach(m.putArray("shards")::add);
        ObjectNode offsets = m.putObject("offsets");
        span.offsets().forEach((p, range) -> offsets.putArray(Integer.toString(p)).add(range[0]).add(range[1]));
        json.writeValue(out.resolve("capture.json").toFile(), m);
        try (BufferedWriter w = Files.newBufferedWriter(out.resolve("requests.tsv"))) {
            w.write("index\trequest_id\n");
            for (Map.Entry<String, Integer> e : shards.requestIndex.entrySet()) {
                w.write(e.getValue() + "\t" + e.getKey() + "\n");
            }
        }
    }

    private static final class WidthMismatch extends Exception {
        WidthMismatch() {
            super(null, null, false, false);
        }
    }

    /** Buffers tokens and writes a shard each {@code shardTokens}; one d_in for the whole capture. */
    private static final class Shards {
        private final Path dir;
        private final int capacity;
        private final Map<String, Integer> requestIndex = new LinkedHashMap<>();
        private final List<String> written = new ArrayList<>();
        private int dIn;
        private float[] rows;
        private int[] request;
        private long[] position;
        private int[] tokenIds;
        private boolean anyTokenIds;
        private int fill;
        private long tokens;
        private long records;

        Shards(Path dir, int capacity) {
            this.dir = dir;
            this.capacity = capacity;
        }

        void add(ActivationChunk chunk) throws IOException, WidthMismatch {
            if (dIn == 0) {
                dIn = chunk.dIn();
                rows = new float[Math.multiplyExact(capacity, dIn)];
                request = new int[capacity];
                position = new long[capacity];
                tokenIds = new int[capacity];
            } else if (chunk.dIn() != dIn) {
                throw new WidthMismatch();
            }
            int req = requestIndex.computeIfAbsent(chunk.requestId(), k -> requestIndex.size());
            int[] ids = chunk.tokenIds().map(Tensor::toIntArray).orElse(null);
            int n = chunk.tokens();
            int done = 0;
            while (done < n) {
                int take = Math.min(n - done, capacity - fill);
                chunk.copyRows(done, take, rows, fill * dIn);
                for (int t = 0; t < take; t++) {
                    request[fill + t] = req;
                    position[fill + t] = chunk.position() + done + t;
                    tokenIds[fill + t] = ids != null ? ids[done + t] : -1;
                }
                anyTokenIds |= ids != null;
                fill += take;
                done += take;
                if (fill == capacity) {
                    flush();
                }
            }
            tokens += n;
            records++;
        }

        void close() throws IOException {
            if (fill > 0) {
                flush();
            }
        }

        private void flush() throws IOException {
            String name = String.format("capture-%05d.safetensors", written.size());
            SafetensorsWriter w = new SafetensorsWriter()
                    .metadata("format", "saeguard-capture")
                    .addF32("activations", new long[] {fill, dIn}, fill == capacity ? rows : java.util.Arrays.copyOf(rows, fill * dIn))
                    .addI32("request", new long[] {fill}, java.util.Arrays.copyOf(request, fill))
                    .addI64("position", new long[] {fill}, java.util.Arrays.copyOf(position, fill));
            if (anyTokenIds) {
                w.addI32("token_ids", new long[] {fill}, java.util.Arrays.copyOf(tokenIds, fill));
            }
            Path tmp = dir.resolve(name + ".part");
            w.writeTo(tmp);
            Files.move(tmp, dir.resolve(name), java.nio.file.StandardCopyOption.ATOMIC_MOVE);
            written.add(name);
            fill = 0;
            anyTokenIds = false;
        }
    }

    /** A progress line on stderr, rewritten in place at most every half second. */
    private static final class Progress {
        private final PrintStream err;
        private long lastPrint;
        private long read;
        private long planned;

        Progress(PrintStream err) {
            this.err = err;
        }

        void update(long read, long planned) {
            this.read = read;
            this.planned = planned;
            long now = System.nanoTime();
            if (now - lastPrint > 500_000_000L) {
                lastPrint = now;
                err.printf("\rcapture: %d / %d records", read, planned);
                err.flush();
            }
        }

        void done() {
            err.printf("\rcapture: %d / %d records%n", read, planned);
        }
    }
}
