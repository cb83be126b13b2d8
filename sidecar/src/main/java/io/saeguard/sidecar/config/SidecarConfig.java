package io.saeguard.sidecar.config;

import io.saeguard.topics.catalog.TopicRole;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;

/**
 * The sidecar's configuration: one YAML file plus {@code SAEGUARD_…} environment overrides
 * (see {@link ConfigLoader}). Immutable. {@link #toString()} redacts secrets.
 */
public record SidecarConfig(Kafka kafka, Map<TopicRole, String> topics, List<SaeEntry> saes, List<Path> detectors, Engine engine,
        Batching batching, Delivery delivery, Http http, State state, Duration drainTimeout, MetricsSettings metrics,
        Optional<Prompts> prompts, boolean allowUnverifiedDetectors, boolean judgeCascade) {

    /** At-least-once (default) or exactly-once (transactions; outputs read with read_committed). */
    public enum Delivery {
        AT_LEAST_ONCE,
        EXACTLY_ONCE
    }

    /**
     * Kafka settings. No bootstrap means: start the embedded broker.
     *
     * @param consumer extra consumer properties ({@code kafka.consumer.*}), passed through as given
     * @param producer extra producer properties ({@code kafka.producer.*})
     * @param admin extra admin client properties ({@code kafka.admin.*})
     */
    public record Kafka(Optional<String> bootstrap, String group, Optional<String> instanceId, Map<String, String> consumer,
            Map<String, String> producer, Map<String, String> admin) {
        public Kafka {
            consumer = Map.copyOf(consumer);
            producer = Map.copyOf(producer);
            admin = Map.copyOf(admin);
        }

        @Override
        public String toString() {
            return "Kafka[bootstrap=" + bootstrap.orElse("(embedded)") + ", group=" + group + ", instanceId=" + instanceId.orElse("-")
                    + ", consumer=" + Secrets.redact(consumer) + ", producer=" + Secrets.redact(producer) + ", admin="
                    + Secrets.redact(admin) + "]";
        }
    }

    /**
     * An SAE to load, and what it serves: records whose {@code sae} metadata equals {@code id}, or
     * whose {@code model} and {@code hook} match. {@code specialTokenIds}: the served model's special token ids
     * (BOS, PAD, EOS...); a token with one of them (in a record's {@code token_ids}) never counts for any detector
     * of this SAE, like a position the record marks in {@code special_mask}.
     */
    public record SaeEntry(String id, Path path, Optional<String> model, Optional<String> hook, int maxActive, Set<Integer> specialTokenIds) {
        public SaeEntry {
            specialTokenIds = Set.copyOf(specialTokenIds);
        }

        public SaeEntry(String id, Path path, Optional<String> model, Optional<String> hook, int maxActive) {
            this(id, path, model, hook, maxActive, Set.of());
        }
    }

    /**
     * The SAE engine: device ({@code auto|cpu|gpu[:N]}), libtorch threads, DJL cache dir, F16 weights
     * on a GPU, and the encoder GEMM in BF16 on a CPU ({@code cpu_bf16}) or a GPU ({@code gpu_bf16}; see {@code EngineOptions}).
     */
    public record Engine(String device, int threads, Optional<Path> djlCache, boolean gpuF16, boolean cpuBf16, boolean gpuBf16) {
        public Engine(String device, int threads, Optional<Path> djlCache, boolean gpuF16, boolean cpuBf16) {
            this(device, threads, djlCache, gpuF16, cpuBf16, false);
        }
    }

    /**
     * Micro-batching and backpressure: flush a batch at {@code maxBatchTokens} or {@code maxDelay}
     * after its first token, or (with {@code flushOnIdle}) as soon as the engine has nothing more queued after a poll's
     * records; pause the partitions above {@code maxInflightTokens}, resume below {@code resumeInflightTokens}.
     */
    public record Batching(int maxBatchTokens, Duration maxDelay, int maxInflightTokens, int resumeInflightTokens, int maxRecordTokens,
            int decodeThreads, boolean flushOnIdle) {
        /** With the default decode threads ({@link #defaultDecodeThreads}), flushing on idle. */
        public Batching(int maxBatchTokens, Duration maxDelay, int maxInflightTokens, int resumeInflightTokens, int maxRecordTokens) {
            this(maxBatchTokens, maxDelay, maxInflightTokens, resumeInflightTokens, maxRecordTokens, defaultDecodeThreads(), true);
        }

        /**
         * Half the cores, at most 4, at least 1: the other half is the engine's and the producer's. On 2 cores that is 1
         * (decode stays on the poll thread); on a 16-core GPU host 4, where one core's decode bounded the pipeline
         * (bench/README.md).
         */
        public static int defaultDecodeThreads() {
            return Math.max(1, Math.min(4, Runtime.getRuntime().availableProcessors() / 2));
        }
    }

    /**
     * The HTTP API.
     *
     * @param host the address to bind: {@code 127.0.0.1} by default when {@code auth} has no tokens, else {@code 0.0.0.0}
     * @param tls  serve HTTPS (and require client certificates when it names a client CA)
     */
    public record Http(String host, int port, Auth auth, Optional<Tls> tls) {
        public Http(String host, int port) {
            this(host, port, Auth.loopbackOnly(), Optional.empty());
        }
    }

    /** What a token may do; {@code /health/*} needs none. */
    public enum Scope {
        /** check, encode, the live page, the alert stream, features, detector listing (and {@code /metrics} when it is not open) */
        READ,
        /** changing detectors: {@code PUT} and {@code DELETE /v1/detectors/{id}} */
        ADMIN,
        /** reviewing alerts: {@code POST /v1/alerts/{request_id}/{seq}/review} */
        REVIEW;

        public String key() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    /** {@code http.auth.mode}: bearer tokens (the default; with none configured the API binds only the loopback address), or none. */
    public enum AuthMode {
        TOKENS,
        NONE
    }

    /**
     * Authentication of the HTTP API.
     *
     * @param mode        {@link AuthMode#NONE} serves every endpoint to anyone (an explicit choice); {@link AuthMode#TOKENS}
     *                    requires a bearer token with the endpoint's scope, unless no token is configured, in which case
     *                    the API is open but bound to the loopback address only
     * @param metricsOpen whether {@code /metrics} is served without a token ({@code http.auth.metrics: open}); otherwise it
     *                    needs {@code read}
     */
    public record Auth(AuthMode mode, boolean metricsOpen, List<Token> tokens) {
        public Auth {
            tokens = List.copyOf(tokens);
        }

        /** No tokens: open, loopback only. */
        public static Auth loopbackOnly() {
            return new Auth(AuthMode.TOKENS, false, List.of());
        }

        /** Whether requests must carry a token. */
        public boolean required() {
            return mode == AuthMode.TOKENS && !tokens.isEmpty();
        }
    }

    /**
     * One bearer token. Only the SHA-256 digest of the secret is kept (compared in constant time); neither it nor the
     * secret appears in {@link #toString()}.
     *
     * @param name   who holds it (logged with changes it makes, and put in the detector registry's {@code who} header)
     * @param sha256 SHA-256 of the token's UTF-8 bytes
     */
    public record Token(String name, byte[] sha256, Set<Scope> scopes) {
        public Token {
            sha256 = sha256.clone();
            scopes = Set.copyOf(scopes);
        }

        @Override
        public byte[] sha256() {
            return sha256.clone();
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Token t && t.name.equals(name) && java.security.MessageDigest.isEqual(t.sha256, sha256)
                    && t.scopes.equals(scopes);
        }

        @Override
        public int hashCode() {
            return name.hashCode();
        }

        @Override
        public String toString() {
            return "Token[name=" + name + ", scopes=" + new java.util.TreeSet<>(scopes) + ", token=[redacted]]";
        }
    }

    /** PEM files: the server's certificate chain and private key, and optionally the CA that client certificates must chain to. */
    public record Tls(Path cert, Path key, Optional<Path> clientCa) {
    }

    /** Per-request detector state: idle time-to-live and a hard cap on tracked requests. */
    public record State(Duration requestTtl, int maxRequests) {
    }

    /**
     * Feature-frequency metrics. Series are exported per SAE for the watched features (those named
     * by detectors plus {@code watch}) and the {@code topFeatures} most frequent ones, so each
     * feature metric has at most |watched| + topFeatures series per SAE.
     *
     * @param topFeatures most frequent features exported per SAE besides the watched ones
     * @param watch extra features to export, by SAE id
     * @param halfLifeTokens half-life of the decayed firing rate, in tokens
     * @param deadWindowTokens a feature silent for this many tokens counts as dead
     * @param fvuSampleRate fraction of tokens reconstructed for the FVU metric (gathered, 128 rows per reconstruct call)
     * @param calibrationTokens for an SAE without {@code sparsity.safetensors}, the firing density over
     *     its first this-many tokens becomes the baseline for drift (0: no baseline)
     * @param fullEncodeFraction for an SAE on the watched-feature encode, the fraction of tokens encoded whole for the
     *     metrics that need every feature (top-N, unwatched rates, drift, dead features; docs/algorithms.md#feature-metrics):
     *     the floor of the sample
     * @param fullEncodeMaxFraction the most the sample grows to while the machine has CPU to spare
     *     ({@link io.saeguard.sidecar.metrics.SampleFraction}); equal to {@code fullEncodeFraction}: a fixed sample
     * @param samplePrecision the encoder GEMM of the full-code sample on the metrics encoder's thread (CPU)
     */
    public record MetricsSettings(int topFeatures, Map<String, java.util.Set<Integer>> watch, long halfLifeTokens, long deadWindowTokens,
            double fvuSampleRate, long calibrationTokens, double fullEncodeFraction, double fullEncodeMaxFraction,
            SamplePrecision samplePrecision) {
        public MetricsSettings {
            watch = Map.copyOf(watch);
            java.util.Objects.requireNonNull(samplePrecision, "samplePrecision");
        }

        /**
         * {@code metrics.sample_precision}: the encoder GEMM of the full-code sample where the metrics encoder has a
         * thread of its own (CPU). The sample only feeds statistics (top-N, unwatched rates, drift, dead features),
         * never a decision, so BF16's error (0.4 % of active features flip at their threshold, codes move ~0.1 % of a
         * token's scale; bench/README.md) is far below the sample's own noise, and on the benchmark machine a 256-row
         * BF16 encode on one core took 111 ms against 252 ms in F32. The price is a BF16 copy of {@code W_enc} per
         * SAE on the watched-feature encode ({@code 2·d_in·d_sae} bytes: 75 MB at 2304x16384). The FVU rows stay F32:
         * they measure the SAE's own reconstruction. A BF16 encoder that cannot be set up leaves the sample in F32, with
         * a warning (a metric never stops the sidecar).
         */
        public enum SamplePrecision {
            /** BF16 where the CPU has AVX512-BF16 or AMX (oneDNN runs it natively), else F32. */
            AUTO,
            F32,
            BF16;

            /** The config's spelling. */
            public String wireName() {
                return name().toLowerCase(java.util.Locale.ROOT);
            }
        }

        /**
         * 1 % of tokens encoded whole. Cost: a sampled token costs a full encode in a group of 256 (~0.56 ms at
         * 2304x16384 on the quiet 2-core benchmark machine), so 1 % adds ~6 µs of CPU per token (on the metrics
         * encoder's thread on the CPU) to the watched encode's ~23 µs, against ~0.56 ms for encoding every token whole.
         * At 2 % and groups of 64 the sample took more CPU than every decision (bench/README.md, "Metrics off the
         * engine thread"). Noise: with the default 100k-token half-life the rates and drift rest on ~1,000 recent
         * sampled tokens; the plug-in JS divergence's upward bias (about K / (8 N ln 2)) is then about 0.06 at 16k
         * features and ~60 active per token, under the drift alert's 0.2.
         */
        public static final double DEFAULT_FULL_ENCODE_FRACTION = 0.01;

        /**
         * Up to 5 % of tokens encoded whole while the machine's CPU is under half busy: at low traffic the sampled
         * series rest on five times the tokens (less noise in drift and top-N); at saturation the sample is back at its
         * floor within seconds, so it takes no CPU from decisions then.
         */
        public static final double DEFAULT_FULL_ENCODE_MAX_FRACTION = 0.05;

        /**
         * 0.2 % of tokens reconstructed for the FVU metric: a reconstruction costs two full passes (encode and decode),
         * and 1 % took ~10 % of the engine in the pipeline benchmark. FVU moves slowly; at 1,000 tokens/s a group of
         * {@value io.saeguard.sidecar.metrics.FvuSampler#ROWS} rows completes about every two minutes.
         */
        public static final double DEFAULT_FVU_SAMPLE_RATE = 0.002;

        public static MetricsSettings defaults() {
            return new MetricsSettings(20, Map.of(), 100_000, 1_000_000, DEFAULT_FVU_SAMPLE_RATE, 100_000, DEFAULT_FULL_ENCODE_FRACTION,
                    DEFAULT_FULL_ENCODE_MAX_FRACTION, SamplePrecision.AUTO);
        }
    }

    /**
     * The prompt path: consume {@code saeguard.prompts}, tokenize, run a local model to per-token
     * hidden states, then the same SAE → detectors → decisions path, the SAE chosen by
     * {@code modelName} + {@code hook}.
     *
     * @param model {@code builtin:all-minilm-l6-v2}, a {@code .onnx} file or a TorchScript {@code .pt} file
     * @param tokenizer the model's {@code tokenizer.json} (not needed for the built-in model)
     * @param modelName the model name hidden states are labelled with (routes to an SAE)
     * @param hook the hook name hidden states are labelled with (routes to an SAE)
     * @param maxTokens longer texts keep their first tokens and the closing special token
     * @param maxBatchPrompts prompts run through the model together at most
     * @param excerpts whether alerts of prompt events carry the text around the firing tokens
     * @param excerptContextChars characters of context on each side of an excerpt
     */
    public record Prompts(String model, Optional<Path> tokenizer, String modelName, String hook, int maxTokens, int maxBatchPrompts,
            boolean excerpts, int excerptContextChars) {
    }

    @Override
    public String toString() {
        return "SidecarConfig[kafka=" + kafka + ", topics=" + new TreeMap<>(topics) + ", saes=" + saes + ", detectors=" + detectors
                + ", engine=" + engine + ", batching=" + batching + ", delivery=" + delivery + ", http=" + http + ", state=" + state
                + ", drainTimeout=" + drainTimeout + ", metrics=" + metrics + ", prompts=" + prompts + ", allowUnverifiedDetectors="
                + allowUnverifiedDetectors + ", judgeCascade=" + judgeCascade + "]";
    }
}
