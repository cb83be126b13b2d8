package io.saeguard.sidecar.cli;

import io.saeguard.sae.lm.HiddenStateModel;
import io.saeguard.sidecar.config.ConfigLoader;
import io.saeguard.sidecar.config.SidecarConfig;
import io.saeguard.sidecar.app.Sidecar;
import io.saeguard.topics.catalog.TopicCatalog;
import io.saeguard.topics.catalog.TopicRole;
import io.saeguard.topics.events.Alert;
import io.saeguard.topics.events.AlertFeature;
import io.saeguard.topics.events.Decision;
import io.saeguard.topics.events.EventCodec;
import io.saeguard.topics.events.PromptEvent;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code saeguard demo}: the whole product in one command, offline. An embedded Kafka broker, the
 * sidecar with the built-in MiniLM prompt model, the MiniLM detector catalog's TopK SAE and packs
 * ({@code detectors/catalog/minilm}, rebuilt by its {@code build.sh}): {@code toxicity},
 * {@code harmful-request}, {@code refusal} and the unwanted-knowledge concept {@code computers}; then
 * held-out texts (ToxiGen statements, XSTest prompts, fortunes) are replayed as prompt events while
 * the console shows progress, alerts with their detector, top features and excerpts, and finally each
 * detector's precision and recall on its own held-out texts.
 */
@Command(name = "demo", mixinStandardHelpOptions = true, description = {
        "Runs the demo: embedded Kafka, the sidecar and the MiniLM catalog's detectors (toxicity, harmful-request, refusal, computers).",
        "The sidecar runs the MiniLM prompt model and the catalog's SAE; the demo replays held-out ToxiGen statements, XSTest prompts "
                + "and fortunes, and reports what each detector caught."})
public final class DemoCommand implements Callable<Integer> {
    static final String RESOURCES = "/io/saeguard/sidecar/demo/";
    /** The SAE id of the catalog's detectors. */
    static final String SAE_ID = "minilm-catalog";
    /** The prompt model's max tokens, as the catalog's config (its packs were selected at this length). */
    static final int MAX_TOKENS = 64;

    /** A detector the demo measures: the labels of the replayed texts that are its positives and its negatives, and where they come from. */
    public record Target(String detector, String positive, String negative, String source) {
    }

    /** The detectors of the demo, in the config's order (computers first, as before) and the report's; refusal has no texts here (model completions cannot ship). */
    public static final List<Target> TARGETS = List.of(
            new Target("computers", "computers", "other", "fortunes"),
            new Target("toxicity", "toxic", "neutral", "ToxiGen statements"),
            new Target("harmful-request", "unsafe", "safe", "XSTest prompts"),
            new Target("refusal", "refusal", "compliance", "no model completions ship; saeguard eval measures it"));

    @Option(names = "--http-port", defaultValue = "8080", description = "HTTP port of the sidecar (0: any free port; default ${DEFAULT-VALUE})")
    int httpPort;

    @Option(names = "--keep-running", description = "keep the sidecar running after the replay (Ctrl-C stops it)")
    boolean keepRunning;

    @Option(names = "--show", defaultValue = "8", description = "alerts printed in full (default ${DEFAULT-VALUE})")
    int show;

    @Option(names = "--timeout", defaultValue = "110", description = "seconds to wait for all decisions (default ${DEFAULT-VALUE})")
    int timeoutSeconds;

    @Option(names = "--threads", description = "libtorch / model threads (default: one per core)")
    Integer threads;

    /** What the replay found: per detector, by the prompts' labels. */
    public record Summary(int prompts, int decided, int alerts, Map<String, String> actions, double seconds, Map<String, DetectorResult> detectors) {
        /** One detector's result ({@link #TARGETS}). */
        public DetectorResult detector(String id) {
            DetectorResult r = detectors.get(id);
            if (r == null) {
                throw new IllegalArgumentException("no detector '" + id + "' in the demo; it has " + detectors.keySet());
            }
            return r;
        }
    }

    /**
     * One detector on the replay: its counts on its own texts (positive and negative labels of its {@link Target}), the
     * prompts of the other sets it flagged ({@code elsewhere}), and the ids of every prompt it alerted on.
     */
    public record DetectorResult(Target target, int truePositives, int falsePositives, int falseNegatives, int trueNegatives, int elsewhere,
            java.util.Set<String> fired) {
        public double precision() {
            return truePositives + falsePositives == 0 ? 0 : truePositives / (double) (truePositives + falsePositives);
        }

        public double recall() {
            return truePositives + falseNegatives == 0 ? 0 : truePositives / (double) (truePositives + falseNegatives);
        }

        public int positives() {
            return truePositives + falseNegatives;
        }

        public int negatives() {
            return falsePositives + trueNegatives;
        }
    }

    /** One replayed prompt. */
    public record Prompt(String label, String text) {
    }

    /** Why the demo cannot run from a jar without its assets, and what to do instead. */
    static final String ABSENT = "the demo's assets are not in this jar: the production build (saeguard-server.jar, the default "
            + "container image) leaves the demo's MiniLM model, SAE and texts out. Run the demo with saeguard.jar "
            + "(java -jar sidecar/target/saeguard.jar demo, or the demo image)";

    @Override
    public Integer call() throws Exception {
        if (!HiddenStateModel.builtinAvailable() || DemoCommand.class.getResource(RESOURCES + "prompts.tsv") == null) {
            throw new IOException(ABSENT);
        }
        Summary s = run(Files.createTempDirectory("saeguard-demo"), httpPort, threads == null ? Runtime.getRuntime().availableProcessors() : threads,
                show, Duration.ofSeconds(timeoutSeconds), System.out, keepRunning);
        return s.decided() == s.prompts() ? 0 : 1;
    }

    /** The prompts the demo replays (label, text). */
    public static List<Prompt> prompts() throws IOException {
        List<Prompt> out = new ArrayList<>();
        for (String line : new String(resource("prompts.tsv"), StandardCharsets.UTF_8).split("\n")) {
            int tab = line.indexOf('\t');
            if (tab > 0) {
                out.add(new Prompt(line.substring(0, tab), line.substring(tab + 1)));
            }
        }
        return out;
    }

    /** Writes the demo's SAE and detectors (the MiniLM catalog's) under {@code dir}; returns the config file. */
    public static Path assets(Path dir, int httpPort, int threads) throws IOException {
        Path sae = Files.createDirectories(dir.resolve("sae"));
        for (String f : List.of("cfg.json", "sae_weights.safetensors")) {
            Files.write(sae.resolve(f), resource(f));
        }
        copyIfPresent("sparsity.safetensors", sae);
        StringBuilder detectors = new StringBuilder();
        for (Target t : TARGETS) {
            Files.write(dir.resolve(t.detector() + ".yaml"), resource(t.detector() + ".yaml"));
            copyIfPresent(t.detector() + ".probe.safetensors", dir);
            copyIfPresent(t.detector() + ".raw-probe.safetensors", dir);
            detectors.append("  - ").append(t.detector()).append(".yaml\n");
        }
        String prefix = "demo-" + UUID.randomUUID().toString().substring(0, 6) + ".";
        StringBuilder topics = new StringBuilder("topics:\n");
        for (TopicRole r : TopicRole.values()) {
            topics.append("  ").append(r.key()).append(": ").append(prefix).append("saeguard.").append(r.key()).append('\n');
        }
        Path config = dir.resolve("saeguard-demo.yaml");
        Files.writeString(config, """
                kafka:
                  group: saeguard-demo
                saes:
                  - id: %s
                    path: sae
                    model: all-minilm-l6-v2
                    hook: blocks.5.hook_resid_post
                detectors:
                %sprompts:
                  model: builtin:all-minilm-l6-v2
                  max_tokens: %d
                  excerpt_context_chars: 40
                engine:
                  device: cpu
                  threads: %d
                http:
                  host: 127.0.0.1
                  port: %d
                metrics:
                  calibration_tokens: 2000
                %s""".formatted(SAE_ID, detectors, MAX_TOKENS, threads, httpPort, topics));
        return config;
    }

    private static void copyIfPresent(String name, Path dir) throws IOException {
        try (InputStream in = DemoCommand.class.getResourceAsStream(RESOURCES + name)) {
            if (in != null) {
                Files.copy(in, dir.resolve(name), StandardCopyOption.REPLACE_EXISTING);
            }
        }
    }

    private static byte[] resource(String name) throws IOException {
        try (InputStream in = DemoCommand.class.getResourceAsStream(RESOURCES + name)) {
            if (in == null) {
                throw new IOException(HiddenStateModel.builtinAvailable() ? "demo asset " + name
                        + " is missing from the jar (demo/build.sh writes it)" : ABSENT);
            }
            return in.readAllBytes();
        }
    }

    /** Runs the demo; returns what it found. */
    public static Summary run(Path dir, int httpPort, int threads, int show, Duration timeout, PrintStream out, boolean keepRunning)
            throws Exception {
        long t0 = System.nanoTime();
        List<Prompt> prompts = prompts();
        Path configFile = assets(dir, httpPort, threads);
        SidecarConfig config = ConfigLoader.load(Optional.of(configFile), Map.of());
        TopicCatalog catalog = TopicCatalog.bundled().withNames(config.topics());
        out.println("saeguard demo: starting an embedded Kafka broker and the sidecar (MiniLM prompt model, the MiniLM catalog's SAE and "
                + "detectors: toxicity, harmful-request, refusal, computers)…");
        EventCodec codec = new EventCodec();
        Map<String, Decision> decisions = new ConcurrentHashMap<>();
        List<Alert> alerts = java.util.Collections.synchronizedList(new ArrayList<>());
        AtomicBoolean stop = new AtomicBoolean();
        try (Sidecar sidecar = Sidecar.start(config)) {
            long readyBy = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (!sidecar.ready() && System.nanoTime() < readyBy) {
                Thread.sleep(100);
            }
            String base = "http://127.0.0.1:" + sidecar.httpPort();
            out.printf("ready in %.1f s. Live page: %s/   metrics: %s/metrics   Kafka: %s%n", (System.nanoTime() - t0) / 1e9, base, base,
                    sidecar.bootstrap());
            CountDownLatch reading = new CountDownLatch(1);
            Thread reader = new Thread(() -> read(sidecar.bootstrap(), catalog, codec, decisions, alerts, stop, reading), "demo-reader");
            reader.setDaemon(true);
            reader.start();
            reading.await();
            Map<String, Long> byLabel = new TreeMap<>();
            prompts.forEach(p -> byLabel.merge(p.label(), 1L, Long::sum));
            out.printf("replaying %d held-out prompts as prompt events (by label: %s)…%n", prompts.size(), byLabel);
            long replay = System.nanoTime();
            try (KafkaProducer<String, byte[]> producer = new KafkaProducer<>(Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, sidecar.bootstrap(),
                    ProducerConfig.LINGER_MS_CONFIG, "5"), new StringSerializer(), new ByteArraySerializer())) {
                for (int i = 0; i < prompts.size(); i++) {
                    PromptEvent e = PromptEvent.of("demo-" + i, prompts.get(i).text(), System.currentTimeMillis()).withModel("all-minilm-l6-v2");
                    producer.send(new ProducerRecord<>(catalog.get(TopicRole.PROMPTS).name(), e.requestId(), codec.encode(e)));
                }
                producer.flush();
            }
            long deadline = System.nanoTime() + timeout.toNanos();
            int seen = 0;
            Map<String, Integer> shown = new TreeMap<>();
            int perDetector = Math.max(1, (show + 2) / 3);
            long lastLine = 0;
            while (decisions.size() < prompts.size() && System.nanoTime() < deadline) {
                Thread.sleep(200);
                synchronized (alerts) {
                    for (; seen < alerts.size(); seen++) { // a few alerts of each detector, not only the first one's
                        Alert a = alerts.get(seen);
                        String detector = a.decision().detector().orElse("?");
                        if (shown.getOrDefault(detector, 0) < perDetector) {
                            shown.merge(detector, 1, Integer::sum);
                            printAlert(out, a, prompts);
                        }
                    }
                }
                if (System.nanoTime() - lastLine > 1_000_000_000L) {
                    lastLine = System.nanoTime();
                    double secs = (lastLine - replay) / 1e9;
                    out.printf("[%5.1f s] decided %d/%d (%.1f prompts/s), alerts %d, actions %s%n", secs, decisions.size(), prompts.size(),
                            decisions.size() / Math.max(secs, 1e-3), alerts.size(), actions(decisions));
                }
            }
            Thread.sleep(500); // the last alerts trail their decisions by a moment
            Summary s;
            synchronized (alerts) {
                s = summarise(prompts, decisions, List.copyOf(alerts), (System.nanoTime() - t0) / 1e9);
            }
            out.printf("%ndone in %.1f s: %d/%d prompts decided, %d alerts, actions %s%n", s.seconds(), s.decided(), s.prompts(), s.alerts(),
                    s.actions());
            out.println("each detector on its own held-out texts (thresholds calibrated to 1 % FPR; 'elsewhere': prompts of the other sets it flagged):");
            for (DetectorResult r : s.detectors().values()) {
                if (r.positives() + r.negatives() == 0) {
                    out.printf("  %-16s %s; flagged %d of the replayed prompts%n", r.target().detector(), r.target().source(), r.elsewhere());
                } else {
                    out.printf("  %-16s %-20s %3d %s / %3d %s: precision %.2f, recall %.2f (TP %d, FP %d, FN %d), elsewhere %d%n",
                            r.target().detector(), r.target().source(), r.positives(), r.target().positive(), r.negatives(), r.target().negative(),
                            r.precision(), r.recall(), r.truePositives(), r.falsePositives(), r.falseNegatives(), r.elsewhere());
                }
            }
            out.printf("look at: %s/ (live alerts, top features), %s/metrics (saeguard_feature_fire_rate, saeguard_decisions_total, …)%n", base,
                    base);
            if (keepRunning) {
                out.println("--keep-running: the sidecar stays up; Ctrl-C stops it.");
                new CountDownLatch(1).await();
            }
            stop.set(true);
            reader.join(5000); // before the embedded broker goes away with the sidecar
            return s;
        } finally {
            stop.set(true);
        }
    }

    private static void read(String bootstrap, TopicCatalog catalog, EventCodec codec, Map<String, Decision> decisions, List<Alert> alerts,
            AtomicBoolean stop, CountDownLatch reading) {
        KafkaConsumer<String, byte[]> c = new KafkaConsumer<>(Map.of(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                ConsumerConfig.GROUP_ID_CONFIG, "demo-reader-" + UUID.randomUUID(), ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest"),
                new StringDeserializer(), new ByteArrayDeserializer());
        try {
            String decisionsTopic = catalog.get(TopicRole.DECISIONS).name();
            c.subscribe(List.of(decisionsTopic, catalog.get(TopicRole.ALERTS).name()));
            reading.countDown();
            while (!stop.get()) {
                for (ConsumerRecord<String, byte[]> r : c.poll(Duration.ofMillis(200))) {
                    try {
                        if (r.topic().equals(decisionsTopic)) {
                            Decision d = codec.decodeDecision(r.value());
                            decisions.put(d.requestId(), d);
                        } else {
                            alerts.add(codec.decodeAlert(r.value()));
                        }
                    } catch (io.saeguard.topics.DecodeException e) {
                        // not ours
                    }
                }
            }
        } finally {
            c.close(Duration.ofSeconds(2));
        }
    }

    private static void printAlert(PrintStream out, Alert a, List<Prompt> prompts) {
        Decision d = a.decision();
        int i = Integer.parseInt(d.requestId().substring("demo-".length()));
        StringBuilder f = new StringBuilder();
        for (AlertFeature af : a.features().subList(0, Math.min(3, a.features().size()))) {
            f.append(f.length() == 0 ? "" : ", ").append('#').append(af.ref().id()).append(String.format("=%.2f", af.ref().value()));
            af.label().ifPresent(l -> f.append(" (").append(l).append(')'));
        }
        out.printf("  ALERT %-9s %-15s %s score %.2f [label: %s] features %s%n        “%s”%n", d.requestId(), d.detector().orElse("?"),
                d.action().wireName(), d.score().orElse(0.0), prompts.get(i).label(), f, a.excerpt().orElse(""));
    }

    private static String actions(Map<String, Decision> decisions) {
        Map<String, Integer> n = new TreeMap<>();
        decisions.values().forEach(d -> n.merge(d.action().wireName(), 1, Integer::sum));
        return n.toString();
    }

    static Summary summarise(List<Prompt> prompts, Map<String, Decision> decisions, List<Alert> alerts, double seconds) {
        Map<String, java.util.Set<String>> firedBy = new TreeMap<>();
        for (Alert a : alerts) {
            if (!a.decision().action().wireName().equals("allow")) {
                firedBy.computeIfAbsent(a.decision().detector().orElse("?"), k -> new java.util.TreeSet<>()).add(a.decision().requestId());
            }
        }
        Map<String, DetectorResult> results = new java.util.LinkedHashMap<>();
        for (Target t : TARGETS) {
            java.util.Set<String> fired = firedBy.getOrDefault(t.detector(), java.util.Set.of());
            int tp = 0;
            int fp = 0;
            int fn = 0;
            int tn = 0;
            int elsewhere = 0;
            for (int i = 0; i < prompts.size(); i++) {
                boolean hit = fired.contains("demo-" + i);
                String label = prompts.get(i).label();
                if (label.equals(t.positive())) {
                    tp += hit ? 1 : 0;
                    fn += hit ? 0 : 1;
                } else if (label.equals(t.negative())) {
                    fp += hit ? 1 : 0;
                    tn += hit ? 0 : 1;
                } else {
                    elsewhere += hit ? 1 : 0;
                }
            }
            results.put(t.detector(), new DetectorResult(t, tp, fp, fn, tn, elsewhere, java.util.Collections.unmodifiableSet(fired)));
        }
        Map<String, String> actions = new TreeMap<>();
        Map<String, Integer> n = new TreeMap<>();
        decisions.values().forEach(d -> n.merge(d.action().wireName(), 1, Integer::sum));
        n.forEach((k, v) -> actions.put(k, Integer.toString(v)));
        return new Summary(prompts.size(), decisions.size(), alerts.size(), actions, seconds, java.util.Collections.unmodifiableMap(results));
    }
}
