package io.saeguard.sidecar.pipeline;

import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.instrumentation.jvm.JvmMetrics;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.saeguard.detectors.DetectorDefinition;
import io.saeguard.detectors.DetectorDefinitions;
import io.saeguard.detectors.StateLimits;
import io.saeguard.sae.Sae;
import io.saeguard.sae.engine.DeviceSpec;
import io.saeguard.sae.engine.EngineOptions;
import io.saeguard.sae.format.SaeLoader;
import io.saeguard.sidecar.config.SidecarConfig;
import io.saeguard.sidecar.http.AlertFeed;
import io.saeguard.sidecar.http.HttpApi;
import io.saeguard.sidecar.kafka.EmbeddedKafka;
import io.saeguard.sidecar.kafka.TopicAdmin;
import io.saeguard.sidecar.metrics.KafkaClientMetrics;
import io.saeguard.sidecar.metrics.Metrics;
import io.saeguard.topics.catalog.TopicCatalog;
import io.saeguard.topics.catalog.TopicRole;
import io.saeguard.topics.safetensors.SafetensorsWriter;
import io.vertx.core.DeploymentOptions;
import io.vertx.core.ThreadingModel;
import io.vertx.core.Vertx;
import java.time.Duration;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.utils.Time;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The running sidecar: wires config, the (embedded) broker, SAEs, detectors, the engine thread,
 * the poll thread, the producer and the HTTP API, and shuts them down in a written order:
 * not-ready → stop fetching → drain in-flight records to a deadline → final commit → close.
 */
public final class Sidecar implements AutoCloseable {
    private static final Logger LOGGER = LoggerFactory.getLogger(Sidecar.class);

    private final SidecarConfig config;
    private final String bootstrap;
    private final Optional<EmbeddedKafka> embedded;
    private final KafkaProducer<String, byte[]> producer;
    private final Optional<TransactionalSink> transactions;
    private final EngineLoop engine;
    private final PollLoop poll;
    private final Thread pollThread;
    private final Vertx vertx;
    private final HttpApi http;
    private final Metrics metrics;
    private final DetectorFileWatcher watcher;
    private final AtomicBoolean stopping = new AtomicBoolean();
    private final AtomicBoolean closed = new AtomicBoolean();

    private final SteeringPublisher steering;
    private Sidecar(SidecarConfig config, String bootstrap, Optional<EmbeddedKafka> embedded, KafkaProducer<String, byte[]> producer,
            Optional<TransactionalSink> transactions, EngineLoop engine, PollLoop poll, Thread pollThread, Vertx vertx, HttpApi http,
            Metrics metrics, DetectorFileWatcher watcher, SteeringPublisher steering) {
        this.steering = steering;
        this.config = config;
        this.bootstrap = bootstrap;
        this.embedded = embedded;
        this.producer = producer;
        this.transactions = transactions;
        this.engine = engine;
        this.poll = poll;
        this.pollThread = pollThread;
        this.vertx = vertx;
        this.http = http;
        this.metrics = metrics;
        this.watcher = watcher;
    }

    /** Starts everything; returns when the HTTP server listens and the pipeline is polling. */
    public static Sidecar start(SidecarConfig config) throws Exception {
        LOGGER.atInfo().log("starting saeguard with {}", config);
        Map<String, Sae> saes = new LinkedHashMap<>();
        for (SidecarConfig.SaeEntry e : config.saes()) {
            saes.put(e.id(), SaeLoader.load(e.path()));
        }
        List<DetectorDefinition> definitions = DetectorDefinitions.loadAll(config.detectors());
        StateLimits limits = new StateLimits(config.state().requestTtl(), config.state().maxRequests());
        for (DetectorDefinition d : definitions) {
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
        SaeRouter router = new SaeRouter(config.saes());
        Optional<String> promptSae = Optional.empty();
        if (config.prompts().isPresent()) {
            SidecarConfig.Prompts ps = config.prompts().get();
            promptSae = Optional.of(router.route(Optional.empty(), Optional.of(ps.modelName()), Optional.of(ps.hook())).orElseThrow(() ->
                    new IllegalArgumentException("prompts: no configured SAE serves model '" + ps.modelName() + "' at hook '" + ps.hook()
                            + "'; give an SAE entry that model and hook (saes: " + String.join(", ", saes.keySet()) + ")")));
        }
        Optional<EmbeddedKafka> embedded = Optional.empty();
        String bootstrap = config.kafka().bootstrap().orElse(null);
        TopicCatalog catalog = TopicCatalog.bundled().withNames(config.topics());
        if (bootstrap == null) {
            LOGGER.warn("************************************************************************");
            LOGGER.warn("* No kafka.bootstrap configured: starting an EMBEDDED single-node Kafka *");
            LOGGER.warn("* broker in this process. For trying saeguard out, NOT for production. *");
            LOGGER.warn("************************************************************************");
            EmbeddedKafka broker = EmbeddedKafka.startEphemeral();
            embedded = Optional.of(broker);
            bootstrap = broker.bootstrap();
            Map<String, Object> adminProps = new HashMap<>(config.kafka().admin());
            adminProps.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            try (Admin admin = Admin.create(adminProps)) {
                TopicAdmin.createAll(admin, catalog);
            }
            LOGGER.atWarn().addKeyValue("bootstrap", bootstrap).log("embedded Kafka broker is up, topics created");
        }

        PrometheusRegistry registry = new PrometheusRegistry();
        JvmMetrics.builder().register(registry);
        Metrics metrics = new Metrics(registry);
        // Series for known label values start at 0, so rate() and alert rules see them before the first event.
        saes.keySet().forEach(id -> {
            metrics.tokensEncoded.labelValues(id);
            metrics.truncatedTokens.labelValues(id);
        });
        definitions.forEach(d -> metrics.alerts.labelValues(d.id()));
        Sidecar[] self = new Sidecar[1];
        GaugeWithCallback.builder().name("saeguard_ready").help("1 when this instance is ready (partitions assigned, outputs writable), else 0")
                .callback(cb -> cb.call(self[0] != null && self[0].ready() ? 1 : 0)).register(registry);
        String version = Optional.ofNullable(Sidecar.class.getPackage().getImplementationVersion()).orElse("dev");
        metrics.buildInfo.setLabelValues(version, String.join(",", saes.keySet()));
        boolean exactlyOnce = config.delivery() == SidecarConfig.Delivery.EXACTLY_ONCE;
        if (exactlyOnce && config.kafka().instanceId().isEmpty()) {
            LOGGER.warn("delivery is exactly-once but kafka.instance_id is not set: after a crash, outputs stall for up to "
                    + "transaction.timeout.ms (10 s) until the broker aborts the dead instance's transaction; set a stable instance id");
        }
        Map<String, Object> producerProps = producerProps(config, bootstrap);
        KafkaProducer<String, byte[]> producer = new KafkaProducer<>(producerProps, new StringSerializer(), new ByteArraySerializer());
        if (exactlyOnce) {
            producer.initTransactions();
        }
        PollLoop[] pollRef = new PollLoop[1];
        AlertFeed alertFeed = new AlertFeed();
        Generation generation = new Generation();
        Optional<TransactionalSink> transactions = exactlyOnce
                ? Optional.of(new TransactionalSink(producer,
                        () -> new KafkaProducer<>(producerProps, new StringSerializer(), new ByteArraySerializer()), generation))
                : Optional.empty();
        OutputSink sink = transactions.isPresent() ? transactions.get() : new DirectSink(producer, a -> pollRef[0].ack(a), generation);
        DeadLetterPublisher dlq = new DeadLetterPublisher(sink, catalog.get(TopicRole.DEADLETTER).name(), metrics);
        DecisionPublisher decisions = new DecisionPublisher(sink, catalog.get(TopicRole.DECISIONS).name(),
                catalog.get(TopicRole.ALERTS).name(), metrics, alertFeed::publish);
        EngineOptions engineOptions = new EngineOptions(DeviceSpec.parse(config.engine().device()),
                config.engine().djlCache().orElse(EngineOptions.defaultCacheDir()), config.engine().threads(), 1, config.engine().gpuF16(),
                config.engine().cpuBf16(), config.engine().gpuBf16());
        Map<String, Object> steeringProps = new HashMap<>(producerProps);
        steeringProps.remove(ProducerConfig.TRANSACTIONAL_ID_CONFIG);
        steeringProps.remove(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG);
        steeringProps.put(ProducerConfig.CLIENT_ID_CONFIG, producerProps.get(ProducerConfig.CLIENT_ID_CONFIG) + "-steering");
        KafkaProducer<String, byte[]> steeringProducer = new KafkaProducer<>(steeringProps, new StringSerializer(), new ByteArraySerializer());
        SteeringPublisher steering = new SteeringPublisher(steeringProducer, catalog.get(TopicRole.STEERING).name());
        Vertx vertx = Vertx.vertx();
        Egress egress = new Egress();
        vertx.deployVerticle(egress, new DeploymentOptions().setThreadingModel(ThreadingModel.WORKER))
                .toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
        EngineLoop engine = new EngineLoop(config, saes, definitions, engineOptions,
                new EngineLoop.Outputs(decisions, dlq, steering::publish, egress), metrics, generation, Time.SYSTEM);
        try {
            engine.start(Duration.ofMinutes(5));
        } catch (Exception | Error e) {
            steering.close();
            vertx.close();
            throw e;
        }
        Optional<PollLoop.PromptRoute> promptRoute = Optional.empty();
        if (promptSae.isPresent()) {
            int dIn = saes.get(promptSae.get()).config().dIn();
            if (engine.promptModelWidth() != dIn) {
                engine.stop(Duration.ofSeconds(30));
                steering.close();
                vertx.close();
                throw new IllegalArgumentException("the prompt model's hidden states have width " + engine.promptModelWidth() + " but SAE '"
                        + promptSae.get() + "' (serving " + config.prompts().get().modelName() + " " + config.prompts().get().hook()
                        + ") expects d_in " + dIn);
            }
            promptRoute = Optional.of(new PollLoop.PromptRoute(catalog.get(TopicRole.PROMPTS).name(), promptSae.get(),
                    config.prompts().get().maxTokens()));
        }
        new io.saeguard.sidecar.metrics.FeatureMetrics(registry, engine.featureStats(), engine::watchedFeatures,
                config.metrics().topFeatures());
        steering.publish(engine.steeringVectors());

        KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(consumerProps(config, bootstrap), new StringDeserializer(),
                new ByteArrayDeserializer());
        List<String> inputTopics = new java.util.ArrayList<>(List.of(catalog.get(TopicRole.ACTIVATIONS).name()));
        promptRoute.ifPresent(r -> inputTopics.add(r.topic()));
        Map<String, Integer> dIns = new HashMap<>();
        saes.forEach((id, sae) -> dIns.put(id, sae.config().dIn()));
        PollLoop poll = new PollLoop(consumer, inputTopics, config.batching(), router, dIns, engine,
                dlq, sink, generation, metrics, transactions, promptRoute, Time.SYSTEM);
        pollRef[0] = poll;
        registry.register(new KafkaClientMetrics(List.of(new KafkaClientMetrics.Client("consumer", consumer::metrics),
                new KafkaClientMetrics.Client("producer", transactions.isPresent() ? transactions.get()::producerMetrics : producer::metrics),
                new KafkaClientMetrics.Client("producer", steeringProducer::metrics))));
        Thread pollThread = new Thread(poll, "saeguard-poll");
        pollThread.start();

        DetectorFileWatcher watcher = new DetectorFileWatcher(config.detectors(), engine);
        HttpApi http = new HttpApi(config.http().host(), config.http().port(), () -> self[0] != null && self[0].ready(), registry, engine, router,
                alertFeed, promptSae);
        vertx.deployVerticle(http).toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
        Sidecar sidecar = new Sidecar(config, bootstrap, embedded, producer, transactions, engine, poll, pollThread, vertx, http, metrics, watcher,
                steering);
        self[0] = sidecar;
        LOGGER.atInfo().addKeyValue("bootstrap", bootstrap).addKeyValue("httpPort", http.actualPort()).addKeyValue("saes", saes.keySet())
                .addKeyValue("detectors", definitions.size()).addKeyValue("device", engine.deviceLabel()).log("saeguard sidecar started");
        return sidecar;
    }

    static Map<String, Object> consumerProps(SidecarConfig config, String bootstrap) {
        Map<String, Object> p = new HashMap<>();
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "500");
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, "saeguard-" + UUID.randomUUID().toString().substring(0, 8));
        p.putAll(config.kafka().consumer());
        // Not overridable: delivery guarantees depend on them.
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, config.kafka().group());
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.putIfAbsent(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, CooperativeStickyAssignor.class.getName());
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

    /**
     * Ready = SAEs loaded (the engine started before this object existed), partitions assigned at
     * least once, the poll thread alive, and no output failure still being recovered from.
     */
    public boolean ready() {
        return !stopping.get() && poll.assigned() && pollThread.isAlive() && poll.healthy();
    }

    /** The Kafka bootstrap servers in use (the embedded broker's when none was configured). */
    public String bootstrap() {
        return bootstrap;
    }

    /** The HTTP port actually bound. */
    public int httpPort() {
        return http.actualPort();
    }

    public Metrics metrics() {
        return metrics;
    }

    public EngineLoop engine() {
        return engine;
    }

    /** Shutdown in order: not-ready → stop fetching → drain → commit → close. */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        stopping.set(true);
        LOGGER.info("shutting down: not ready, draining in-flight records");
        try {
            watcher.close();
        } catch (java.io.IOException e) {
            LOGGER.warn("closing the detector file watcher: {}", e.toString());
        }
        poll.stop(config.drainTimeout());
        try {
            poll.awaitStopped(config.drainTimeout().plusSeconds(15));
            engine.stop(Duration.ofSeconds(30));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        transactions.ifPresentOrElse(t -> t.close(Duration.ofSeconds(10)), () -> producer.close(Duration.ofSeconds(10)));
        steering.close();
        try {
            vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        } catch (Exception e) {
            LOGGER.warn("Vert.x did not close cleanly: {}", e.toString());
        }
        embedded.ifPresent(EmbeddedKafka::close);
        LOGGER.info("saeguard stopped");
    }
}
