package io.saeguard.sidecar.pipeline;

import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.saeguard.detectors.DetectorDefinition;
import io.saeguard.detectors.DetectorDefinitions;
import io.saeguard.detectors.StateLimits;
import io.saeguard.sae.Sae;
import io.saeguard.sae.engine.DeviceSpec;
import io.saeguard.sae.engine.EngineOptions;
import io.saeguard.sidecar.config.SidecarConfig;
import io.saeguard.sidecar.kafka.EmbeddedKafka;
import io.saeguard.sidecar.kafka.GrouplessConsumer;
import io.saeguard.sidecar.metrics.KafkaClientMetrics;
import io.saeguard.sidecar.metrics.Metrics;
import io.saeguard.topics.catalog.TopicCatalog;
import io.saeguard.topics.catalog.TopicRole;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.utils.Time;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The record pipeline, from the input topics to decisions, alerts and dead letters: the producers and the output
 * sink of the configured delivery mode, the engine thread ({@link EngineLoop}), the detector registry
 * ({@link DetectorRegistry}), the poll thread ({@link PollLoop}) and the detector file watcher. The application around it (the {@code app} package) gives it a broker, a metrics
 * registry and an egress executor, and closes it; nothing here knows HTTP or Vert.x.
 */
public final class Pipeline {
    private static final Logger LOGGER = LoggerFactory.getLogger(Pipeline.class);
    /** How long a detector change over HTTP waits for this replica to apply it (the answer is a 503 after). */
    static final Duration REGISTRY_APPLY_TIMEOUT = Duration.ofSeconds(10);
    /** How long the poll thread waits for the decisions topic's partition count (a record naming a reply partition). */
    private static final Duration REPLY_PARTITIONS_LOOKUP_TIMEOUT = Duration.ofSeconds(5);
    /** How long reading back the state of assigned partitions may take before the poll loop recovers and tries again. */
    static final Duration STATE_READ_TIMEOUT = Duration.ofSeconds(30);

    /**
     * What the pipeline runs on.
     *
     * @param saes          the configured SAEs, read from their files, by id
     * @param definitions   the detectors at start (see {@link #validate})
     * @param promptSae     the SAE serving the prompt model's hidden states, when {@code prompts:} is configured
     * @param bootstrap     the Kafka bootstrap servers
     * @param egress        runs the engine's batches' publishing, one task at a time in order ({@link Egress})
     */
    public record Setup(SidecarConfig config, Map<String, Sae> saes, List<DetectorDefinition> definitions, SaeRouter router,
            Optional<String> promptSae, String bootstrap, TopicCatalog catalog, Metrics metrics, PrometheusRegistry registry,
            Executor egress) {
    }

    private final SidecarConfig config;
    private final KafkaProducer<String, byte[]> producer;
    private final Optional<TransactionalSink> transactions;
    private final SteeringPublisher steering;
    private final EngineLoop engine;
    private final PollLoop poll;
    private final Thread pollThread;
    private final DetectorRegistry registry;
    private final DetectorFileWatcher watcher;

    private Pipeline(SidecarConfig config, KafkaProducer<String, byte[]> producer, Optional<TransactionalSink> transactions,
            SteeringPublisher steering, EngineLoop engine, DetectorRegistry registry, PollLoop poll, Thread pollThread,
            DetectorFileWatcher watcher) {
        this.config = config;
        this.producer = producer;
        this.transactions = transactions;
        this.steering = steering;
        this.engine = engine;
        this.registry = registry;
        this.poll = poll;
        this.pollThread = pollThread;
        this.watcher = watcher;
    }

    /**
     * Refuses a configuration the pipeline cannot run, before anything starts: a detector naming an SAE that is not
     * loaded or a feature that SAE does not have, or {@code metrics.watch} doing so.
     *
     * @throws IllegalArgumentException naming the detector or key and what is wrong
     */
    public static void validate(SidecarConfig config, Map<String, Sae> saes, List<DetectorDefinition> definitions) {
        StateLimits limits = new StateLimits(config.state().requestTtl(), config.state().maxRequests());
        for (DetectorDefinition d : definitions) {
            checkAllowed(d, config);
            try {
                LiveDetectors.check(d, saes, limits);
            } catch (InvalidRequestException e) {
                throw new IllegalArgumentException(e.getMessage(), e);
            }
        }
        for (Map.Entry<String, Set<Integer>> w : config.metrics().watch().entrySet()) {
            Sae sae = saes.get(w.getKey());
            if (sae == null) {
                throw new IllegalArgumentException("metrics.watch names SAE '" + w.getKey() + "', which the config does not load (saes: "
                        + String.join(", ", saes.keySet()) + ")");
            }
            for (int f : w.getValue()) {
                if (f >= sae.config().dSae()) {
                    throw new IllegalArgumentException("metrics.watch." + w.getKey() + " names feature " + f + ", but SAE '" + w.getKey()
                            + "' has " + sae.config().dSae() + " features (ids 0.." + (sae.config().dSae() - 1) + ")");
                }
            }
        }
    }

    /**
     * Refuses a detector with an {@code escalate} band unless the config turns the judge cascade on, and one marked
     * {@code status: unverified} unless the config allows such detectors (warns when it does).
     *
     * @throws IllegalArgumentException naming the detector and both ways out
     */
    static void checkAllowed(DetectorDefinition d, SidecarConfig config) {
        if (!config.judgeCascade() && d.policy().bands().stream().anyMatch(b -> b.escalation().isPresent())) {
            throw new IllegalArgumentException("detector '" + d.id() + "' has an 'action: escalate' band, but the judge cascade is off: "
                    + "set 'judge_cascade: true' in the config (it consumes saeguard.judge-verdicts with the range assignor; "
                    + "docs/architecture.md#judge-cascade) or give the band another action");
        }
        if (d.status() != DetectorDefinition.Status.UNVERIFIED) {
            return;
        }
        if (!config.allowUnverifiedDetectors()) {
            throw new IllegalArgumentException("detector '" + d.id() + "' is marked 'status: unverified': its thresholds were never measured, "
                    + "so its decisions are guesses; measure it on your traffic ('saeguard eval', 'saeguard select') and remove the mark, or "
                    + "set 'allow_unverified_detectors: true' in the config to run it anyway");
        }
        LOGGER.atWarn().addKeyValue("detector", d.id()).log("running an UNVERIFIED detector (allow_unverified_detectors: true): its "
                + "thresholds were never measured; treat its decisions as untested");
    }

    /**
     * Starts the engine (SAEs on the device, steering vectors published), reads the detector registry to its end (applying
     * it) and seeds it from the detector files it lacks, then starts the poll thread and the file watcher: no input
     * record is decided before the registry's detectors are in force.
     */
    public static Pipeline start(Setup s) throws Exception {
        SidecarConfig config = s.config();
        boolean exactlyOnce = config.delivery() == SidecarConfig.Delivery.EXACTLY_ONCE;
        if (exactlyOnce && config.kafka().instanceId().isEmpty()) {
            LOGGER.warn("delivery is exactly-once but kafka.instance_id is not set: after a crash, outputs stall for up to "
                    + "transaction.timeout.ms (10 s) until the broker aborts the dead instance's transaction; set a stable instance id");
        }
        RequestStateLog stateLog = stateLog(s);
        Map<String, Object> producerProps = producerProps(config, s.bootstrap());
        KafkaProducer<String, byte[]> producer = new KafkaProducer<>(producerProps, new StringSerializer(), new ByteArraySerializer());
        if (exactlyOnce) {
            producer.initTransactions();
        }
        Generation generation = new Generation();
        Optional<TransactionalSink> transactions = exactlyOnce
                ? Optional.of(new TransactionalSink(producer,
                        () -> new KafkaProducer<>(producerProps, new StringSerializer(), new ByteArraySerializer()), generation))
                : Optional.empty();
        // At-least-once: the sink acknowledges to the poll loop, which exists only later; acks that arrive before it would
        // have none to go to (nothing is sent before the poll loop hands records over).
        AtomicReference<PollLoop> acks = new AtomicReference<>();
        OutputSink sink = transactions.isPresent() ? transactions.get() : new DirectSink(producer, a -> acks.get().ack(a), generation);
        TopicCatalog catalog = s.catalog();
        DeadLetterPublisher dlq = new DeadLetterPublisher(sink, catalog.get(TopicRole.DEADLETTER).name(), s.metrics());
        DecisionPublisher decisions = new DecisionPublisher(sink, catalog.get(TopicRole.DECISIONS).name(),
                catalog.get(TopicRole.ALERTS).name(), catalog.get(TopicRole.SHADOW).name(), catalog.get(TopicRole.JUDGE).name(),
                Optional.of(stateLog.target()), s.metrics());
        Map<String, Object> steeringProps = new HashMap<>(producerProps);
        steeringProps.remove(ProducerConfig.TRANSACTIONAL_ID_CONFIG);
        steeringProps.remove(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG);
        steeringProps.put(ProducerConfig.CLIENT_ID_CONFIG, producerProps.get(ProducerConfig.CLIENT_ID_CONFIG) + "-steering");
        KafkaProducer<String, byte[]> steeringProducer = new KafkaProducer<>(steeringProps, new StringSerializer(), new ByteArraySerializer());
        SteeringPublisher steering = new SteeringPublisher(steeringProducer, catalog.get(TopicRole.STEERING).name());
        EngineLoop engine = new EngineLoop(config, s.saes(), s.definitions(), engineOptions(config),
                new EngineOutputs(decisions, dlq, steering::publish, s.egress()), s.metrics(), generation, Time.SYSTEM);
        Optional<PollLoop.PromptRoute> promptRoute;
        DetectorRegistry registry = null;
        try {
            engine.start(Duration.ofMinutes(5));
            promptRoute = promptRoute(s, engine);
            steering.publish(engine.steeringVectors());
            registry = startRegistry(s, producerProps, engine);
        } catch (Exception | Error e) {
            if (registry != null) {
                registry.close();
            }
            engine.close();
            steering.close();
            transactions.ifPresentOrElse(t -> t.close(Duration.ofSeconds(10)), () -> producer.close(Duration.ofSeconds(10)));
            stateLog.close();
            throw e;
        }
        KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(consumerProps(config, s.bootstrap()), new StringDeserializer(),
                new ByteArrayDeserializer());
        List<String> inputTopics = new ArrayList<>(List.of(catalog.get(TopicRole.ACTIVATIONS).name()));
        promptRoute.ifPresent(r -> inputTopics.add(r.topic()));
        // With the judge cascade, verdicts are consumed by the same group as the activations, co-partitioned with them
        // (topics.yaml), and the range assignor (consumerProps) hands a verdict's partition to the member holding the
        // request's escalation (docs/architecture.md#judge-cascade).
        Optional<String> verdicts = config.judgeCascade() ? Optional.of(catalog.get(TopicRole.JUDGE_VERDICTS).name()) : Optional.empty();
        verdicts.ifPresent(inputTopics::add);
        Map<String, Integer> dIns = new HashMap<>();
        s.saes().forEach((id, sae) -> dIns.put(id, sae.config().dIn()));
        String decisionsTopic = catalog.get(TopicRole.DECISIONS).name();
        ReplyPartitions replies = new ReplyPartitions(decisionsTopic,
                () -> consumer.partitionsFor(decisionsTopic, REPLY_PARTITIONS_LOOKUP_TIMEOUT).size(), Time.SYSTEM);
        PollLoop poll = new PollLoop(consumer, inputTopics, config.batching(), s.router(), dIns, engine, dlq, sink, generation, s.metrics(),
                transactions, promptRoute, replies, verdicts, Optional.of(stateLog), Time.SYSTEM);
        acks.set(poll);
        s.registry().register(new KafkaClientMetrics(List.of(new KafkaClientMetrics.Client("consumer", consumer::metrics),
                new KafkaClientMetrics.Client("producer", transactions.isPresent() ? transactions.get()::producerMetrics : producer::metrics),
                new KafkaClientMetrics.Client("producer", steeringProducer::metrics))));
        Thread pollThread = new Thread(poll, "saeguard-poll");
        pollThread.start();
        DetectorFileWatcher watcher = new DetectorFileWatcher(config.detectors(), engine, registry);
        return new Pipeline(config, producer, transactions, steering, engine, registry, poll, pollThread, watcher);
    }

    /**
     * The state topic's reader (its own consumer: no group, {@code read_committed}), after checking that the topic has as
     * many partitions as each input topic (docs/architecture.md#request-state).
     */
    private static RequestStateLog stateLog(Setup s) {
        Map<String, Object> props = registryConsumerProps(s.config(), s.bootstrap());
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, "saeguard-state-" + UUID.randomUUID().toString().substring(0, 8));
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        RequestStateLog log = new RequestStateLog(new RequestStateLog.Target(s.catalog().get(TopicRole.STATE).name(), s.config().kafka().group()),
                new KafkaConsumer<>(props, new StringDeserializer(), new ByteArrayDeserializer()), s.metrics(), STATE_READ_TIMEOUT, Time.SYSTEM);
        List<String> inputs = new ArrayList<>(List.of(s.catalog().get(TopicRole.ACTIVATIONS).name()));
        if (s.promptSae().isPresent()) {
            inputs.add(s.catalog().get(TopicRole.PROMPTS).name());
        }
        try {
            log.checkPartitions(inputs);
        } catch (RuntimeException e) {
            log.close();
            throw e;
        }
        return log;
    }

    /** Reads the registry topic to its end through the engine, then publishes the detector files whose ids it never held. */
    private static DetectorRegistry startRegistry(Setup s, Map<String, Object> producerProps, EngineLoop engine) throws Exception {
        SidecarConfig config = s.config();
        Map<String, Object> props = new HashMap<>(producerProps);
        props.remove(ProducerConfig.TRANSACTIONAL_ID_CONFIG);
        props.remove(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG);
        props.put(ProducerConfig.CLIENT_ID_CONFIG, producerProps.get(ProducerConfig.CLIENT_ID_CONFIG) + "-detectors");
        KafkaProducer<String, byte[]> producer = new KafkaProducer<>(props, new StringSerializer(), new ByteArraySerializer());
        KafkaConsumer<String, byte[]> consumer;
        try {
            consumer = new KafkaConsumer<>(registryConsumerProps(config, s.bootstrap()), new StringDeserializer(), new ByteArrayDeserializer());
        } catch (RuntimeException e) {
            producer.close(Duration.ofSeconds(5));
            throw e;
        }
        DetectorRegistry registry = new DetectorRegistry(s.catalog().get(TopicRole.DETECTORS).name(), producer, consumer,
                new DetectorRegistry.Target() {
                    @Override
                    public CompletableFuture<Boolean> replace(DetectorDefinition definition) {
                        return engine.replaceDetector(definition);
                    }

                    @Override
                    public CompletableFuture<Boolean> remove(String id) {
                        return engine.removeDetector(id);
                    }
                }, REGISTRY_APPLY_TIMEOUT, Time.SYSTEM);
        try {
            registry.start(Duration.ofSeconds(60));
            if (!registry.awaitCaughtUp(Duration.ofMinutes(2))) {
                throw new IllegalStateException("the detector registry topic '" + registry.topic() + "' was not read to its end within 2 "
                        + "minutes; check the broker and the topic");
            }
            for (Path file : config.detectors()) {
                byte[] yaml = Files.readAllBytes(file);
                registry.seed(file, DetectorDefinitions.load(file).id(), yaml);
            }
        } catch (Exception | Error e) {
            registry.close();
            throw e;
        }
        return registry;
    }

    /** The registry's reader: assigned every partition, no group (every replica reads everything), never commits. */
    static Map<String, Object> registryConsumerProps(SidecarConfig config, String bootstrap) {
        return GrouplessConsumer.properties(config.kafka().consumer(), bootstrap, "saeguard-detectors-" + UUID.randomUUID().toString().substring(0, 8));
    }

    /** Where prompt events come from, once the engine confirmed the prompt model's width is the SAE's d_in. */
    private static Optional<PollLoop.PromptRoute> promptRoute(Setup s, EngineLoop engine) {
        if (s.promptSae().isEmpty()) {
            return Optional.empty();
        }
        String sae = s.promptSae().get();
        SidecarConfig.Prompts ps = s.config().prompts().orElseThrow();
        int dIn = s.saes().get(sae).config().dIn();
        if (engine.promptModelWidth() != dIn) {
            throw new IllegalArgumentException("the prompt model's hidden states have width " + engine.promptModelWidth() + " but SAE '" + sae
                    + "' (serving " + ps.modelName() + " " + ps.hook() + ") expects d_in " + dIn);
        }
        return Optional.of(new PollLoop.PromptRoute(s.catalog().get(TopicRole.PROMPTS).name(), sae, ps.maxTokens()));
    }

    static EngineOptions engineOptions(SidecarConfig config) {
        SidecarConfig.Engine e = config.engine();
        return new EngineOptions(DeviceSpec.parse(e.device()), e.djlCache().orElse(EngineOptions.defaultCacheDir()), e.threads(), 1,
                e.gpuF16(), e.cpuBf16(), e.gpuBf16());
    }

    static Map<String, Object> consumerProps(SidecarConfig config, String bootstrap) {
        Map<String, Object> p = new HashMap<>();
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "500");
        // Kafka's default is 500 ms. The consumer sends no new fetch to a broker while one is in flight, and a fetch holds
        // only the partitions with nothing buffered, so records of the other partitions could wait for it; with 20 ms the
        // pipeline benchmark's saturation rose from 11.8k to 18.5k tokens/s at one token per record (bench/README.md,
        // 2026-12-07). An idle sidecar then sends ~50 empty fetches a second per broker. kafka.consumer overrides it.
        p.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, "20");
        // The socket's receive buffer sized by the OS (TCP autotuning), not the Java client's fixed 64 KiB: with 64 KiB a
        // fetch response of a few hundred KB filled the window and the rest waited for TCP's ~200 ms zero-window probe,
        // so ~5 % of records arrived 200-250 ms late even at a quarter of saturation; a plain consumer with no work to do
        // saw the same, and with -1 its p99 fell from ~230 to ~20-40 ms (bench/README.md, 2026-12-07). kafka.consumer overrides it.
        p.put(ConsumerConfig.RECEIVE_BUFFER_CONFIG, "-1");
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, "saeguard-" + UUID.randomUUID().toString().substring(0, 8));
        p.putAll(config.kafka().consumer());
        // Not overridable: delivery guarantees depend on them.
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, config.kafka().group());
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        if (config.judgeCascade()) {
            // A verdict must reach the member that holds its request: only the range assignor gives every member the same
            // partition numbers of each topic it reads (the sticky ones balance counts across topics and may not).
            Object chosen = p.putIfAbsent(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, RangeAssignor.class.getName());
            if (chosen != null && !RangeAssignor.class.getName().equals(chosen.toString().strip())) {
                throw new IllegalArgumentException("judge_cascade: true needs the range assignor (judge verdicts must reach the replica "
                        + "holding their request's escalation, which only co-partitioned assignment guarantees), but "
                        + "kafka.consumer.partition.assignment.strategy is '" + chosen + "': remove it or set it to "
                        + RangeAssignor.class.getName());
            }
        } else {
            p.putIfAbsent(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, CooperativeStickyAssignor.class.getName());
        }
        config.kafka().instanceId().ifPresent(id -> p.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, id));
        if (config.delivery() == SidecarConfig.Delivery.EXACTLY_ONCE) {
            p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        }
        return p;
    }

    static Map<String, Object> producerProps(SidecarConfig config, String bootstrap) {
        Map<String, Object> p = new HashMap<>();
        p.put(ProducerConfig.LINGER_MS_CONFIG, "1");
        p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, Integer.toString(EmbeddedKafka.MAX_MESSAGE_BYTES));
        p.put(ProducerConfig.CLIENT_ID_CONFIG, "saeguard-" + UUID.randomUUID().toString().substring(0, 8));
        p.putAll(config.kafka().producer());
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        if (config.delivery() == SidecarConfig.Delivery.EXACTLY_ONCE) {
            // A stable id per instance (kafka.instance_id) lets a restarted instance fence its predecessor and abort
            // the transaction it left open at once. With a random id the open transaction blocks read_committed
            // readers and the group's offsets until transaction.timeout.ms, so that timeout is kept short.
            p.putIfAbsent(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "10000");
            p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "saeguard-" + config.kafka().group() + "-"
                    + config.kafka().instanceId().orElse(UUID.randomUUID().toString()));
        }
        return p;
    }

    /** The engine thread's API (HTTP checks, detector replacement, feature statistics). */
    public EngineLoop engine() {
        return engine;
    }

    /** Where detector changes go (HTTP and files): the registry topic every replica applies. */
    public DetectorRegistry registry() {
        return registry;
    }

    /**
     * The detector registry read to the end it had at start and still read, partitions assigned at least once, the poll
     * thread alive, and no output failure still being recovered from.
     */
    public boolean ready() {
        return registry.caughtUp() && poll.assigned() && pollThread.isAlive() && poll.healthy();
    }

    /**
     * Shuts down in order: stop watching detector files and reading the registry, stop fetching, drain the records in flight to the deadline
     * ({@code shutdown.drain_timeout_ms}), final commit, stop the engine, close the producers.
     */
    public void close() {
        try {
            watcher.close();
        } catch (IOException e) {
            LOGGER.warn("closing the detector file watcher: {}", e.toString());
        }
        registry.close(); // no detector change after this; the engine still decides what is in flight
        poll.stop(config.drainTimeout());
        try {
            poll.awaitStopped(config.drainTimeout().plusSeconds(15));
            engine.stop(Duration.ofSeconds(30));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        transactions.ifPresentOrElse(t -> t.close(Duration.ofSeconds(10)), () -> producer.close(Duration.ofSeconds(10)));
        steering.close();
    }
}
