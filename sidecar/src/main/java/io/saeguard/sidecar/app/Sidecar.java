package io.saeguard.sidecar.app;

import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.instrumentation.jvm.JvmMetrics;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.saeguard.detectors.DetectorDefinition;
import io.saeguard.detectors.DetectorDefinitions;
import io.saeguard.sae.Sae;
import io.saeguard.sae.format.SaeLoader;
import io.saeguard.sidecar.config.SidecarConfig;
import io.saeguard.sidecar.http.HttpApi;
import io.saeguard.sidecar.kafka.EmbeddedKafka;
import io.saeguard.sidecar.kafka.TopicAdmin;
import io.saeguard.sidecar.metrics.FeatureMetrics;
import io.saeguard.sidecar.metrics.Metrics;
import io.saeguard.sidecar.pipeline.Egress;
import io.saeguard.sidecar.pipeline.EngineLoop;
import io.saeguard.sidecar.pipeline.Pipeline;
import io.saeguard.sidecar.pipeline.SaeRouter;
import io.saeguard.sidecar.review.Reviews;
import io.saeguard.topics.catalog.TopicCatalog;
import io.vertx.core.DeploymentOptions;
import io.vertx.core.ThreadingModel;
import io.vertx.core.Vertx;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The running sidecar: wires config, the (embedded) broker, the metrics registry, Vert.x, the record {@link Pipeline}
 * and the HTTP API, and shuts them down in a written order: not-ready → the pipeline (stop fetching → drain
 * in-flight records to a deadline → final commit → engine and producers) → Vert.x → the alert and review logs → the embedded broker.
 */
public final class Sidecar implements AutoCloseable {
    private static final Logger LOGGER = LoggerFactory.getLogger(Sidecar.class);

    private final SidecarConfig config;
    private final AtomicBoolean stopping = new AtomicBoolean();
    private final AtomicBoolean closed = new AtomicBoolean();
    private Optional<EmbeddedKafka> embedded = Optional.empty();
    private String bootstrap;
    private Metrics metrics;
    private Vertx vertx;
    private HttpApi http;
    private volatile Pipeline pipeline;
    private Reviews reviews;

    private Sidecar(SidecarConfig config) {
        this.config = config;
    }

    /** Starts everything; returns when the HTTP server listens and the pipeline is polling. */
    public static Sidecar start(SidecarConfig config) throws Exception {
        LOGGER.atInfo().log("starting saeguard with {}", config);
        Sidecar sidecar = new Sidecar(config);
        try {
            sidecar.open();
        } catch (Exception | Error e) {
            sidecar.close();
            throw e;
        }
        return sidecar;
    }

    private void open() throws Exception {
        Map<String, Sae> saes = new LinkedHashMap<>();
        for (SidecarConfig.SaeEntry e : config.saes()) {
            saes.put(e.id(), SaeLoader.load(e.path()));
        }
        List<DetectorDefinition> definitions = DetectorDefinitions.loadAll(config.detectors());
        Pipeline.validate(config, saes, definitions);
        SaeRouter router = new SaeRouter(config.saes());
        Optional<String> promptSae = Optional.empty();
        if (config.prompts().isPresent()) {
            SidecarConfig.Prompts ps = config.prompts().get();
            promptSae = Optional.of(router.route(Optional.empty(), Optional.of(ps.modelName()), Optional.of(ps.hook())).orElseThrow(() ->
                    new IllegalArgumentException("prompts: no configured SAE serves model '" + ps.modelName() + "' at hook '" + ps.hook()
                            + "'; give an SAE entry that model and hook (saes: " + String.join(", ", saes.keySet()) + ")")));
        }
        TopicCatalog catalog = TopicCatalog.bundled().withNames(config.topics());
        bootstrap = config.kafka().bootstrap().orElse(null);
        if (bootstrap == null) {
            bootstrap = startEmbeddedBroker(catalog);
        }

        PrometheusRegistry registry = new PrometheusRegistry();
        JvmMetrics.builder().register(registry);
        metrics = new Metrics(registry);
        // Series for known label values start at 0, so rate() and alert rules see them before the first event.
        saes.keySet().forEach(id -> {
            metrics.tokensEncoded.labelValues(id);
            metrics.truncatedTokens.labelValues(id);
        });
        definitions.forEach(d -> metrics.alerts.labelValues(d.id()));
        // Every verdict from 0, so the reviewed-precision ratio has a numerator before a detector's first true positive.
        definitions.forEach(d -> java.util.Arrays.stream(io.saeguard.topics.events.Verdict.values())
                .forEach(v -> metrics.reviewVerdicts.labelValues(d.id(), v.wireName())));
        GaugeWithCallback.builder().name("saeguard_ready").help("1 when this instance is ready (partitions assigned, outputs writable), else 0")
                .callback(cb -> cb.call(ready() ? 1 : 0)).register(registry);
        String version = Optional.ofNullable(Sidecar.class.getPackage().getImplementationVersion()).orElse("dev");
        metrics.buildInfo.setLabelValues(version, String.join(",", saes.keySet()));

        vertx = Vertx.vertx();
        Egress egress = new Egress();
        vertx.deployVerticle(egress, new DeploymentOptions().setThreadingModel(ThreadingModel.WORKER))
                .toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
        pipeline = Pipeline.start(new Pipeline.Setup(config, saes, definitions, router, promptSae, bootstrap, catalog, metrics, registry,
                egress));
        EngineLoop engine = pipeline.engine();
        new FeatureMetrics(registry, engine.featureStats(), engine::watchedFeatures, config.metrics().topFeatures());

        reviews = Reviews.start(config, bootstrap, catalog);
        http = new HttpApi(config.http(), this::ready, registry, engine, pipeline.registry(), router, reviews, metrics, promptSae);
        vertx.deployVerticle(http).toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
        logAuth(config.http());
        LOGGER.atInfo().addKeyValue("bootstrap", bootstrap).addKeyValue("httpPort", http.actualPort()).addKeyValue("saes", saes.keySet())
                .addKeyValue("detectors", definitions.size()).addKeyValue("device", engine.deviceLabel()).log("saeguard sidecar started");
    }

    private static void logAuth(SidecarConfig.Http h) {
        SidecarConfig.Auth a = h.auth();
        if (a.mode() == SidecarConfig.AuthMode.NONE) {
            LOGGER.atWarn().addKeyValue("host", h.host()).log("HTTP authentication is OFF (http.auth.mode: none): anyone who reaches this "
                    + "address can replace detectors and read alerts");
        } else if (a.tokens().isEmpty()) {
            LOGGER.atWarn().addKeyValue("host", h.host()).log("no HTTP tokens configured (http.auth.tokens): the API is open and bound to "
                    + "{} only; add tokens to serve other hosts", h.host());
        } else {
            LOGGER.atInfo().addKeyValue("host", h.host()).addKeyValue("tokens", a.tokens().stream().map(SidecarConfig.Token::name).toList())
                    .addKeyValue("metrics", a.metricsOpen() ? "open" : "read").addKeyValue("tls", h.tls().isPresent() ? 
                            h.tls().get().clientCa().isPresent() ? "mutual" : "server" : "off").log("HTTP API requires bearer tokens");
        }
    }

    private String startEmbeddedBroker(TopicCatalog catalog) throws Exception {
        LOGGER.warn("************************************************************************");
        LOGGER.warn("* No kafka.bootstrap configured: starting an EMBEDDED single-node Kafka *");
        LOGGER.warn("* broker in this process. For trying saeguard out, NOT for production. *");
        LOGGER.warn("************************************************************************");
        EmbeddedKafka broker = EmbeddedKafka.startEphemeral();
        embedded = Optional.of(broker);
        Map<String, Object> adminProps = new HashMap<>(config.kafka().admin());
        adminProps.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap());
        try (Admin admin = Admin.create(adminProps)) {
            TopicAdmin.createAll(admin, catalog);
        }
        LOGGER.atWarn().addKeyValue("bootstrap", broker.bootstrap()).log("embedded Kafka broker is up, topics created");
        return broker.bootstrap();
    }

    /**
     * Ready = SAEs loaded and the pipeline started, the detector registry read to the end it had at start, partitions
     * assigned at least once, the poll thread alive, and no output failure still being recovered from; never while
     * shutting down.
     */
    public boolean ready() {
        Pipeline p = pipeline;
        return !stopping.get() && p != null && p.ready();
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
        return pipeline.engine();
    }

    /** Shutdown in order: not-ready → the pipeline (stop fetching → drain → commit → engine, producers) → Vert.x → broker. */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        stopping.set(true);
        LOGGER.info("shutting down: not ready, draining in-flight records");
        if (pipeline != null) {
            pipeline.close();
        }
        if (vertx != null) {
            try {
                vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
            } catch (Exception e) {
                LOGGER.warn("Vert.x did not close cleanly: {}", e.toString());
            }
        }
        if (reviews != null) {
            reviews.close(); // after the HTTP API, so no review is accepted without its producer
        }
        embedded.ifPresent(EmbeddedKafka::close);
        LOGGER.info("saeguard stopped");
    }
}
