package io.saeguard.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.saeguard.topics.events.Phase;
import io.saeguard.topics.safetensors.DType;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Drives a system under test through Kafka: produces activation records to {@code --activations}
 * (an {@link ActivationStream}: {@code --requests} concurrent requests of {@code --tokens-per-record}
 * tokens per record), reads the decisions it writes to {@code --decisions}, matches each decision to
 * its record by {@code (request_id, position)} ({@link DecisionTracker}) and reports sustained
 * decided tokens/s and decision latency p50/p95/p99, from the record's scheduled send time (also its
 * Kafka timestamp) to the decision's arrival here. Every system (the saeguard sidecar, the Python
 * baselines) is driven by this same program, so they see the same records.
 *
 * <p>Phases ({@code --phases}, comma-separated, run in order against the same topics):
 * <ul>
 *   <li>{@code saturation}: flat out, but closed-loop: a record is sent whenever fewer than
 *       {@code max(--min-backlog-tokens, --backlog-s × recent decided rate)} tokens are sent and not
 *       decided, so the system always has about two seconds of work queued and never idles, while the
 *       generator does not burn the shared cores on records nobody will read for minutes. The result
 *       is the decided tokens/s over {@code --measure-s} after {@code --warmup-s}. Latency here is
 *       queueing time and not meaningful.</li>
 *   <li>{@code 25}, {@code 50}, {@code 90} (any integer): open loop at that percentage of the
 *       saturation rate measured earlier in this run (or {@code --saturation}); records are sent on a
 *       fixed schedule and latency counts from the scheduled time, so a generator or system that
 *       falls behind cannot hide it (no coordinated omission). The generator wakes on a grid of
 *       {@code --pace-us} (1 ms) and then sends every record that is due, as a server emits a decode
 *       step's tokens together: a wake-up per record cost ~20 µs of CPU on the 2-core VM (0.16 cores at
 *       8,000 records/s, taken from the system under test), and the grid delays a record by less than one
 *       step, which its latency, counted from the schedule, includes. Records scheduled in the
 *       {@code --rate-measure-s} window after {@code --rate-warmup-s} are measured; the window is
 *       lengthened to hold {@code --min-samples} records, up to {@code --rate-measure-max-s}.</li>
 *   <li>{@code rate:X}: open loop at X tokens/s.</li>
 *   <li>{@code backlog:S}: the system's drain rate with nothing else competing for the cores. The system under
 *       test ({@code --pid sut=PID}) is stopped with SIGSTOP; S seconds of its saturation rate (at most
 *       {@code --backlog-max-tokens}) are produced and flushed; it is resumed with SIGCONT, and the result is
 *       the backlog's tokens over the time from the resume to its last decision. The broker and the generator
 *       are idle while it drains (the generator only reads decisions), so this is the rate to set beside
 *       Kafka's own fetch + decode ceiling for the same records. Latency here is queueing time and not
 *       meaningful. The stop must stay well inside the consumer's session timeout (45 s by default).</li>
 *   <li>{@code soak:P}: P % of saturation for {@code --soak-s}; every {@code --snapshot-s} it records
 *       RSS of the watched processes and, for those named in {@code --jcmd}, heap used after a full
 *       GC ({@code jcmd PID GC.run}, then {@code GC.heap_info}).</li>
 * </ul>
 * After each phase the generator waits until every record sent was decided (or
 * {@code --drain-timeout-s}), then 2 s. Each window also records CPU use of the machine and of the
 * processes named with {@code --pid name=PID} ({@link ProcSnapshot}), and, with
 * {@code --metrics-url}, the sidecar's own batch and encode metrics ({@link MetricsScrape}).
 *
 * <p>Output: {@code --out-json} (everything) and {@code --out-csv} (one row per phase), rewritten
 * after each phase. Activation values are never printed.
 *
 * <p>Size: about 650 lines, one class on purpose: a benchmark tool whose producer, decision tracking and per-window
 * report share the run's clock and counters; it is not product code.
 */
public final class LoadGenerator {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    private static final int TOP_THREADS = 8;

    private final Options o;
    private final ActivationStream stream;
    private final KafkaProducer<String, byte[]> producer;
    private final DecisionTracker tracker;
    private final ScheduledExecutorService observer = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "loadgen-observer");
        t.setDaemon(true);
        return t;
    });
    private final long nanoAnchor = System.nanoTime();
    private final long wallAnchorMillis = System.currentTimeMillis();
    private final AtomicLong sendErrors = new AtomicLong();
    private final AtomicLong recordsSent = new AtomicLong();
    private volatile int recordBytes;
    private final Map<String, Long> pids;

    private LoadGenerator(Options o) {
        this.o = o;
        this.stream = new ActivationStream(o.workload(), o.runId, o.poolTokens, o.seed);
        this.producer = new KafkaProducer<>(Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, o.bootstrap,
                ProducerConfig.ACKS_CONFIG, "all", ProducerConfig.LINGER_MS_CONFIG, "1",
                // 4-600 KB records: the 16 KiB default batch is the main limiter for large records (kafka notes §2)
                ProducerConfig.BATCH_SIZE_CONFIG, "262144", ProducerConfig.MAX_REQUEST_SIZE_CONFIG, "20000000",
                ProducerConfig.BUFFER_MEMORY_CONFIG, Long.toString(256L << 20),
                ProducerConfig.CLIENT_ID_CONFIG, "loadgen-" + o.runId), new StringSerializer(), new ByteArraySerializer());
        this.tracker = new DecisionTracker(o.bootstrap, o.decisions);
        Map<String, Long> p = new LinkedHashMap<>(o.pids);
        p.put("loadgen", ProcessHandle.current().pid());
        this.pids = p;
    }

    public static void main(String[] args) throws Exception {
        Options o = Options.parse(args);
        LoadGenerator g = new LoadGenerator(o);
        try {
            g.run();
        } finally {
            g.close();
        }
    }

    private void run() throws Exception {
        tracker.start(Duration.ofSeconds(90));
        Map<String, Object> report = new LinkedHashMap<>();
        report.put("label", o.label);
        report.put("started", Instant.now().toString());
        Map<String, Object> workload = new LinkedHashMap<>(Map.of("d_in", o.dIn, "tokens_per_record", o.tokensPerRecord,
                "requests", o.requests, "request_tokens", o.requestTokens, "dtype", o.dtype.name()));
        report.put("workload", workload);
        report.put("topics", Map.of("activations", o.activations, "decisions", o.decisions));
        report.put("cores", Runtime.getRuntime().availableProcessors());
        List<Map<String, Object>> phases = new ArrayList<>();
        report.put("phases", phases);
        double saturation = o.saturation;
        int id = 0;
        for (String spec : o.phases) {
            id++;
            Map<String, Object> r;
            if (spec.equals("saturation")) {
                r = saturation(id);
                saturation = ((Number) r.get("decided_tokens_per_s")).doubleValue();
                report.put("saturation_tokens_per_s", saturation);
            } else if (spec.startsWith("rate:")) {
                double rate = Double.parseDouble(spec.substring(5));
                r = fixedRate(id, "rate-" + spec.substring(5), rate, o.rateWarmupS, measureSeconds(rate), false);
            } else if (spec.startsWith("backlog:")) {
                requireSaturation(saturation, spec);
                long tokens = Math.min(o.backlogMaxTokens, Math.max(o.tokensPerRecord, (long) (saturation * Double.parseDouble(spec.substring(8)))));
                r = backlog(id, tokens);
            } else if (spec.startsWith("soak:")) {
                requireSaturation(saturation, spec);
                double pct = Double.parseDouble(spec.substring(5));
                r = fixedRate(id, "soak-" + spec.substring(5), saturation * pct / 100, o.rateWarmupS, o.soakS, true);
                r.put("load_fraction", pct / 100);
            } else {
                requireSaturation(saturation, spec);
                double pct = Double.parseDouble(spec);
                double rate = saturation * pct / 100;
                r = fixedRate(id, "load-" + spec, rate, o.rateWarmupS, measureSeconds(rate), false);
                r.put("load_fraction", pct / 100);
            }
            phases.add(r);
            System.err.printf(Locale.ROOT, "loadgen %s: %s offered %s decided %.1f tokens/s p50 %s p99 %s ms%n", o.label, r.get("phase"),
                    r.get("offered_tokens_per_s"), ((Number) r.get("decided_tokens_per_s")).doubleValue(),
                    ((Map<?, ?>) r.get("latency_ms")).get("p50"), ((Map<?, ?>) r.get("latency_ms")).get("p99"));
            workload.put("record_bytes", recordBytes);
            report.put("records_sent", recordsSent.get());
            report.put("send_errors", sendErrors.get());
            report.put("duplicate_decisions", tracker.duplicates());
            report.put("unparsable_decisions", tracker.unparsable());
            report.put("flagged_decisions", tracker.flagged());
            write(report);
            Thread.sleep(2000);
        }
        report.put("finished", Instant.now().toString());
        write(report);
    }

    /** --rate-measure-s, lengthened to hold --min-samples records (a p99 needs them), at most --rate-measure-max-s. */
    private double measureSeconds(double rate) {
        double forSamples = o.minSamples * o.tokensPerRecord / rate;
        return Math.max(o.rateMeasureS, Math.min(o.rateMeasureMaxS, forSamples));
    }

    private static void requireSaturation(double saturation, String spec) {
        if (!(saturation > 0)) {
            throw new IllegalArgumentException("phase '" + spec + "' needs a saturation rate: run 'saturation' first or pass --saturation");
        }
    }

    /** Flat out with a bounded backlog; measures decided tokens/s. */
    private Map<String, Object> saturation(int id) throws Exception {
        long t0 = System.nanoTime();
        long mStart = t0 + seconds(o.warmupS);
        long mEnd = mStart + seconds(o.measureS);
        CompletableFuture<Window> start = captureAt(mStart);
        CompletableFuture<Window> end = captureAt(mEnd);
        ArrayDeque<long[]> history = new ArrayDeque<>(); // (nanos, decided tokens), one per 250 ms
        long maxCap = 0;
        long now;
        while ((now = System.nanoTime()) < mEnd) {
            if (history.isEmpty() || now - history.peekLast()[0] >= 250_000_000L) {
                history.addLast(new long[] {now, tracker.decidedTokens()});
                while (history.size() > 21) {
                    history.removeFirst();
                }
            }
            long cap = Math.max(o.minBacklogTokens, (long) (recentRate(history) * o.backlogS));
            maxCap = Math.max(maxCap, cap);
            if (tracker.outstandingTokens() < cap) {
                send(stream.next(), now, id);
            } else {
                tracker.awaitProgress(2_000_000L);
            }
            tracker.checkHealthy();
        }
        Window a = start.get();
        Window b = end.get();
        double decided = tracker.tokensArrivedBetween(mStart, mEnd) / (o.measureS);
        boolean drained = tracker.drain(Duration.ofMillis((long) (o.drainTimeoutS * 1000)));
        Map<String, Object> r = phaseResult(id, "saturation", Double.NaN, decided, mStart, mEnd, a, b, drained);
        r.put("max_backlog_tokens", maxCap);
        return r;
    }

    /** Stops the system under test, queues {@code tokens} tokens, resumes it and times the drain (see the class comment). */
    private Map<String, Object> backlog(int id, long tokens) throws Exception {
        Long sut = pids.get("sut");
        if (sut == null) {
            throw new IllegalArgumentException("phase 'backlog' needs the system under test's pid: --pid sut=PID");
        }
        long t0 = System.nanoTime();
        long sent = 0;
        signal(sut, "STOP");
        try {
            for (long k = 0; sent < tokens; k++) {
                ActivationStream.Next n = stream.next();
                send(n, System.nanoTime(), id);
                sent += n.tokens();
                if ((k & 63) == 0) {
                    tracker.checkHealthy();
                }
            }
            producer.flush();
        } finally {
            signal(sut, "CONT");
        }
        long resumed = System.nanoTime();
        Window a = captureNow();
        boolean drained = tracker.drain(Duration.ofMillis((long) (o.drainTimeoutS * 1000)));
        // Drained: up to the last decision. Not (the drain timed out): over the whole wait, and the report leaves it out.
        long last = drained ? tracker.lastArrival(id) : System.nanoTime();
        Window b = captureNow();
        long decidedTokens = tracker.tokensArrivedBetween(resumed, Long.MAX_VALUE);
        double seconds = Math.max(1e-3, (last - resumed) / 1e9);
        Map<String, Object> r = phaseResult(id, "backlog", Double.NaN, decidedTokens / seconds, t0, resumed, a, b, drained);
        r.put("window_s", seconds);
        r.put("window_epoch_ms", List.of(epochMillis(resumed), epochMillis(last)));
        r.put("backlog_tokens", sent);
        r.put("stopped_s", (resumed - t0) / 1e9);
        return r;
    }

    private static void signal(long pid, String signal) throws IOException, InterruptedException {
        Process p = new ProcessBuilder("kill", "-" + signal, Long.toString(pid)).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        if (!p.waitFor(10, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IOException("kill -" + signal + " " + pid + " failed: " + out.strip());
        }
    }

    /** Highest decided rate over any 1 s span of the recent history (robust to a short stall). */
    private static double recentRate(ArrayDeque<long[]> history) {
        long[][] h = history.toArray(new long[0][]);
        double best = 0;
        for (int i = 4; i < h.length; i++) {
            best = Math.max(best, (h[i][1] - h[i - 4][1]) / ((h[i][0] - h[i - 4][0]) / 1e9));
        }
        return best;
    }

    /** Open loop at {@code rate} tokens/s. */
    private Map<String, Object> fixedRate(int id, String name, double rate, double warmupS, double measureS, boolean soak) throws Exception {
        double intervalNanos = o.tokensPerRecord / rate * 1e9;
        long t0 = System.nanoTime() + 1_000_000L;
        long mStart = t0 + seconds(warmupS);
        long mEnd = mStart + seconds(measureS);
        CompletableFuture<Window> start = captureAt(mStart);
        CompletableFuture<Window> end = captureAt(mEnd);
        List<Map<String, Object>> snapshots = new ArrayList<>();
        List<CompletableFuture<Map<String, Object>>> pendingSnapshots = new ArrayList<>();
        if (soak) {
            for (double s = 0; s <= measureS + 1e-9; s += o.snapshotS) {
                long at = mStart + seconds(Math.min(s, measureS));
                pendingSnapshots.add(CompletableFuture.supplyAsync(() -> memorySnapshot(at, mStart), delayedExecutor(at)));
            }
        }
        long behindMax = 0;
        // How late each record of the measured window left the generator: latency counts from the scheduled time, so the
        // generator's own lateness (the pacing grid, and the cores it shares) is part of every percentile, for every system alike.
        long pace = o.paceMicros * 1000L;
        long[] late = new long[(int) Math.min(Integer.MAX_VALUE - 8, (long) (measureS * rate / o.tokensPerRecord) + 16)];
        int lateCount = 0;
        for (long k = 0;; k++) {
            long sched = t0 + (long) (k * intervalNanos);
            if (sched >= mEnd) {
                break;
            }
            long wakeAt = wakeAt(t0, sched, pace);
            long wait;
            while ((wait = wakeAt - System.nanoTime()) > 0) {
                LockSupport.parkNanos(wait);
            }
            long behind = Math.max(0, System.nanoTime() - sched);
            behindMax = Math.max(behindMax, behind);
            if (sched >= mStart && lateCount < late.length) {
                late[lateCount++] = behind;
            }
            send(stream.next(), sched, id);
            if ((k & 63) == 0) {
                tracker.checkHealthy();
            }
        }
        Window a = start.get();
        Window b = end.get();
        double decided = tracker.tokensArrivedBetween(mStart, mEnd) / measureS;
        boolean drained = tracker.drain(Duration.ofMillis((long) (o.drainTimeoutS * 1000)));
        Map<String, Object> r = phaseResult(id, name, rate, decided, mStart, mEnd, a, b, drained);
        r.put("generator_max_behind_ms", behindMax / 1e6);
        r.put("generator_behind_ms", percentiles(Arrays.copyOf(late, lateCount)));
        r.put("kept_up", drained && decided >= 0.95 * rate);
        if (soak) {
            for (CompletableFuture<Map<String, Object>> f : pendingSnapshots) {
                snapshots.add(f.get());
            }
            // Latency per snapshot interval: does it drift over the soak?
            for (int i = 1; i < snapshots.size(); i++) {
                long from = mStart + seconds(((Number) snapshots.get(i - 1).get("t_s")).doubleValue());
                long to = mStart + seconds(((Number) snapshots.get(i).get("t_s")).doubleValue());
                snapshots.get(i).put("latency_ms_since_previous", percentiles(tracker.latenciesScheduledBetween(id, from, to)));
            }
            r.put("memory", snapshots);
        }
        return r;
    }

    /**
     * When to send a record scheduled at {@code sched}: the first point of the grid {@code t0 + m × pace} at or after it
     * ({@code sched} itself when {@code pace} is 0). Never early, and at most {@code pace - 1} ns late, so records due in
     * the same step leave on one wake-up.
     */
    static long wakeAt(long t0, long sched, long pace) {
        return pace <= 0 ? sched : t0 + Math.floorDiv(sched - t0 + pace - 1, pace) * pace;
    }

    private Map<String, Object> phaseResult(int id, String name, double offered, double decided, long mStart, long mEnd, Window a, Window b,
            boolean drained) {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("phase", name);
        r.put("offered_tokens_per_s", Double.isNaN(offered) ? null : round(offered));
        r.put("decided_tokens_per_s", round(decided));
        r.put("window_s", (mEnd - mStart) / 1e9);
        r.put("window_epoch_ms", List.of(epochMillis(mStart), epochMillis(mEnd)));
        long[] lat = tracker.latenciesScheduledBetween(id, mStart, mEnd);
        r.put("latency_ms", percentiles(lat));
        Map<String, Object> byPartition = new LinkedHashMap<>();
        tracker.latenciesByPartition(id, mStart, mEnd).forEach((p, l) -> byPartition.put(Integer.toString(p), percentiles(l)));
        r.put("latency_ms_by_partition", byPartition);
        r.put("drained", drained);
        r.put("undecided_records", tracker.pending(id));
        r.put("cpu", ProcSnapshot.usage(a.proc, b.proc, TOP_THREADS));
        if (o.metricsUrl != null) {
            r.put("pipeline", MetricsScrape.window(a.metrics, b.metrics, (b.proc.nanos() - a.proc.nanos()) / 1e9));
        }
        return r;
    }

    private static Map<String, Object> percentiles(long[] nanos) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("count", nanos.length);
        if (nanos.length == 0) {
            return m;
        }
        long[] s = nanos.clone();
        Arrays.sort(s);
        double sum = 0;
        for (long v : s) {
            sum += v;
        }
        m.put("p50", ms(rank(s, 0.50)));
        m.put("p95", ms(rank(s, 0.95)));
        m.put("p99", ms(rank(s, 0.99)));
        m.put("max", ms(s[s.length - 1]));
        m.put("mean", ms((long) (sum / s.length)));
        return m;
    }

    /** Nearest-rank percentile. */
    private static long rank(long[] sorted, double q) {
        int i = (int) Math.ceil(q * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
    }

    private static double ms(long nanos) {
        return Math.round(nanos / 1e4) / 100.0;
    }

    private static double round(double v) {
        return Math.round(v * 10) / 10.0;
    }

    private void send(ActivationStream.Next n, long scheduledNanos, int phase) {
        String requestId = n.requestId();
        long position = n.position();
        tracker.expect(requestId, position, scheduledNanos, n.tokens(), phase);
        long ts = epochMillis(scheduledNanos);
        // The callback holds the key, not the record: the producer has copied the value into its batch, and a callback
        // that kept it would keep every unacknowledged record's bytes alive twice, and G1 copied them between regions (its
        // threads took 0.14 of the generator's 0.70 cores in a saturation phase, 0.03 of 0.52 without: bench/README.md, 2026-12-08).
        producer.send(new ProducerRecord<>(o.activations, null, ts, requestId, n.value()), (md, e) -> {
            if (e != null) {
                if (sendErrors.getAndIncrement() < 5) {
                    System.err.println("loadgen: send failed: " + e);
                }
                tracker.abandon(requestId, position);
            }
        });
        recordsSent.incrementAndGet();
        recordBytes = n.value().length;
    }

    private record Window(ProcSnapshot proc, MetricsScrape metrics) {
    }

    private CompletableFuture<Window> captureAt(long nanos) {
        return CompletableFuture.supplyAsync(this::captureNow, delayedExecutor(nanos));
    }

    private Window captureNow() {
        return new Window(ProcSnapshot.take(pids), o.metricsUrl == null ? new MetricsScrape(Map.of()) : MetricsScrape.of(o.metricsUrl));
    }

    private java.util.concurrent.Executor delayedExecutor(long atNanos) {
        return r -> observer.schedule(r, Math.max(0, atNanos - System.nanoTime()), TimeUnit.NANOSECONDS);
    }

    /** RSS of every watched process, and heap after a full GC of those named in --jcmd. */
    private Map<String, Object> memorySnapshot(long atNanos, long startNanos) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("t_s", Math.round((atNanos - startNanos) / 1e8) / 10.0);
        ProcSnapshot p = ProcSnapshot.take(pids);
        Map<String, Object> rss = new LinkedHashMap<>();
        p.processes().forEach((name, proc) -> rss.put(name, proc.rssKiB() / 1024.0));
        m.put("rss_mib", rss);
        Map<String, Object> heap = new LinkedHashMap<>();
        for (String name : o.jcmd) {
            Long pid = pids.get(name);
            if (pid != null) {
                heap.put(name, heapAfterGc(pid));
            }
        }
        m.put("heap_used_after_gc_mib", heap);
        return m;
    }

    private static Object heapAfterGc(long pid) {
        try {
            jcmd(pid, "GC.run");
            String info = jcmd(pid, "GC.heap_info");
            // " garbage-first heap   total 262144K, used 40123K [0x...": the first "used" is the heap's
            var m = java.util.regex.Pattern.compile("used (\\d+)K").matcher(info);
            return m.find() ? Long.parseLong(m.group(1)) / 1024.0 : info.strip();
        } catch (IOException | InterruptedException e) {
            return "jcmd failed: " + e.getMessage();
        }
    }

    private static String jcmd(long pid, String command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder("jcmd", Long.toString(pid), command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        p.waitFor(60, TimeUnit.SECONDS);
        return out;
    }

    private long epochMillis(long nanos) {
        return wallAnchorMillis + (nanos - nanoAnchor) / 1_000_000L;
    }

    private static long seconds(double s) {
        return (long) (s * 1e9);
    }

    private void write(Map<String, Object> report) throws IOException {
        if (o.outJson != null) {
            Files.writeString(o.outJson, JSON.writeValueAsString(report));
        }
        if (o.outCsv != null) {
            StringBuilder csv = new StringBuilder(
                    "label,phase,offered_tokens_per_s,decided_tokens_per_s,p50_ms,p95_ms,p99_ms,max_ms,samples,undecided_records\n");
            @SuppressWarnings("unchecked")
            List<Map<String, Object>> phases = (List<Map<String, Object>>) report.get("phases");
            for (Map<String, Object> r : phases) {
                Map<?, ?> l = (Map<?, ?>) r.get("latency_ms");
                csv.append(String.join(",", o.label, (String) r.get("phase"), String.valueOf(r.get("offered_tokens_per_s")),
                        String.valueOf(r.get("decided_tokens_per_s")), String.valueOf(l.get("p50")), String.valueOf(l.get("p95")),
                        String.valueOf(l.get("p99")), String.valueOf(l.get("max")), String.valueOf(l.get("count")),
                        String.valueOf(r.get("undecided_records")))).append('\n');
            }
            Files.writeString(o.outCsv, csv);
        }
    }

    private void close() throws InterruptedException {
        producer.close(Duration.ofSeconds(10));
        tracker.close();
        observer.shutdownNow();
    }

    /** Command-line options ({@code --name value}); see {@link #USAGE}. */
    private static final class Options {
        static final String USAGE = """
                usage: java -cp bench/target/benchmarks.jar io.saeguard.bench.LoadGenerator
                  --bootstrap HOST:PORT --activations TOPIC --decisions TOPIC
                  [--label NAME] [--phases saturation,25,50,90 | rate:X | soak:50 | backlog:S] [--saturation TOKENS_PER_S]
                  [--d-in 2304] [--tokens-per-record 1] [--requests 64] [--request-tokens 256] [--dtype F32|F16|BF16]
                  [--model synthetic] [--hook blocks.0.hook_resid_post] [--pool-tokens 1024] [--seed 42]
                  [--warmup-s 10] [--measure-s 30] [--rate-warmup-s 5] [--rate-measure-s 20] [--min-samples 200]
                  [--rate-measure-max-s 60] [--pace-us 1000] [--soak-s 600] [--snapshot-s 60]
                  [--backlog-s 2] [--min-backlog-tokens 256] [--backlog-max-tokens 200000] [--drain-timeout-s 60]
                  [--pid NAME=PID ...] [--jcmd NAME ...] [--metrics-url URL] [--out-json FILE] [--out-csv FILE]
                """;

        String bootstrap;
        String activations;
        String decisions;
        String label = "run";
        String runId = "lg" + UUID.randomUUID().toString().substring(0, 6);
        List<String> phases = List.of("saturation", "25", "50", "90");
        double saturation = Double.NaN;
        int dIn = 2304;
        int tokensPerRecord = 1;
        int requests = 64;
        int requestTokens = -1;
        DType dtype = DType.F32;
        String model = "synthetic";
        String hook = "blocks.0.hook_resid_post";
        int poolTokens = 1024;
        long seed = 42;
        double warmupS = 10;
        double measureS = 30;
        double rateWarmupS = 5;
        double rateMeasureS = 20;
        double rateMeasureMaxS = 60;
        int minSamples = 200;
        long paceMicros = 1000;
        double soakS = 600;
        double snapshotS = 60;
        double backlogS = 2;
        long minBacklogTokens = 256;
        long backlogMaxTokens = 200_000;
        double drainTimeoutS = 60;
        Map<String, Long> pids = new LinkedHashMap<>();
        List<String> jcmd = new ArrayList<>();
        String metricsUrl;
        Path outJson;
        Path outCsv;

        ActivationStream.Workload workload() {
            return new ActivationStream.Workload(dIn, tokensPerRecord, requests, requestTokens, dtype, model, hook,
                    tokensPerRecord == 1 ? Phase.GENERATION : Phase.PROMPT);
        }

        static Options parse(String[] args) {
            Options o = new Options();
            Map<String, String> seen = new HashMap<>();
            for (int i = 0; i < args.length; i++) {
                String k = args[i];
                if (k.equals("--help") || k.equals("-h")) {
                    System.out.print(USAGE);
                    System.exit(0);
                }
                if (i + 1 >= args.length) {
                    throw usage("option " + k + " needs a value");
                }
                String v = args[++i];
                seen.put(k, v);
                switch (k) {
                    case "--bootstrap" -> o.bootstrap = v;
                    case "--activations" -> o.activations = v;
                    case "--decisions" -> o.decisions = v;
                    case "--label" -> o.label = v;
                    case "--run-id" -> o.runId = v;
                    case "--phases" -> o.phases = List.of(v.split(","));
                    case "--saturation" -> o.saturation = Double.parseDouble(v);
                    case "--d-in" -> o.dIn = Integer.parseInt(v);
                    case "--tokens-per-record" -> o.tokensPerRecord = Integer.parseInt(v);
                    case "--requests" -> o.requests = Integer.parseInt(v);
                    case "--request-tokens" -> o.requestTokens = Integer.parseInt(v);
                    case "--dtype" -> o.dtype = DType.valueOf(v);
                    case "--model" -> o.model = v;
                    case "--hook" -> o.hook = v;
                    case "--pool-tokens" -> o.poolTokens = Integer.parseInt(v);
                    case "--seed" -> o.seed = Long.parseLong(v);
                    case "--warmup-s" -> o.warmupS = Double.parseDouble(v);
                    case "--measure-s" -> o.measureS = Double.parseDouble(v);
                    case "--rate-warmup-s" -> o.rateWarmupS = Double.parseDouble(v);
                    case "--rate-measure-s" -> o.rateMeasureS = Double.parseDouble(v);
                    case "--rate-measure-max-s" -> o.rateMeasureMaxS = Double.parseDouble(v);
                    case "--min-samples" -> o.minSamples = Integer.parseInt(v);
                    case "--pace-us" -> o.paceMicros = Long.parseLong(v);
                    case "--soak-s" -> o.soakS = Double.parseDouble(v);
                    case "--snapshot-s" -> o.snapshotS = Double.parseDouble(v);
                    case "--backlog-s" -> o.backlogS = Double.parseDouble(v);
                    case "--min-backlog-tokens" -> o.minBacklogTokens = Long.parseLong(v);
                    case "--backlog-max-tokens" -> o.backlogMaxTokens = Long.parseLong(v);
                    case "--drain-timeout-s" -> o.drainTimeoutS = Double.parseDouble(v);
                    case "--pid" -> {
                        String[] kv = v.split("=", 2);
                        if (kv.length != 2) {
                            throw usage("--pid takes NAME=PID, got " + v);
                        }
                        o.pids.put(kv[0], Long.parseLong(kv[1]));
                    }
                    case "--jcmd" -> o.jcmd.add(v);
                    case "--metrics-url" -> o.metricsUrl = v;
                    case "--out-json" -> o.outJson = Path.of(v);
                    case "--out-csv" -> o.outCsv = Path.of(v);
                    default -> throw usage("unknown option " + k);
                }
            }
            if (o.bootstrap == null || o.activations == null || o.decisions == null) {
                throw usage("--bootstrap, --activations and --decisions are required");
            }
            if (o.paceMicros < 0 || o.paceMicros > 100_000) {
                throw usage("--pace-us must be 0 (wake for each record) to 100000, got " + o.paceMicros);
            }
            if (o.requestTokens < 0) {
                o.requestTokens = o.tokensPerRecord == 1 ? 256 : 8 * o.tokensPerRecord;
            }
            return o;
        }

        private static IllegalArgumentException usage(String message) {
            System.err.print(USAGE);
            return new IllegalArgumentException(message);
        }
    }
}
