package io.saeguard.sidecar.http;

import static io.saeguard.sidecar.http.Replies.body;
import static io.saeguard.sidecar.http.Replies.bodyLimit;
import static io.saeguard.sidecar.http.Replies.error;
import static io.saeguard.sidecar.http.Replies.json;
import static io.saeguard.sidecar.http.Replies.refuse;
import static io.saeguard.sidecar.http.Replies.wellEscaped;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import io.prometheus.metrics.expositionformats.ExpositionFormatWriter;
import io.prometheus.metrics.expositionformats.ExpositionFormats;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.saeguard.detectors.spi.DetectorConfigException;
import io.saeguard.detectors.DetectorDefinition;
import io.saeguard.detectors.DetectorDefinitions;
import io.saeguard.sidecar.config.SidecarConfig;
import io.saeguard.sidecar.config.SidecarConfig.Scope;
import io.saeguard.sidecar.pipeline.CheckRequest;
import io.saeguard.sidecar.pipeline.CheckResult;
import io.saeguard.sidecar.pipeline.DetectorRegistry;
import io.saeguard.sidecar.pipeline.EngineLoop;
import io.saeguard.sidecar.pipeline.InvalidRequestException;
import io.saeguard.sidecar.pipeline.RegistryUnavailableException;
import io.saeguard.sidecar.pipeline.SaeRouter;
import io.saeguard.sidecar.metrics.Metrics;
import io.saeguard.sidecar.review.AlertLog;
import io.saeguard.sidecar.review.ReviewUnavailableException;
import io.saeguard.sidecar.review.Reviews;
import io.saeguard.topics.events.Review;
import io.saeguard.topics.DecodeException;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.ClientAuth;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.net.PemKeyCertOptions;
import io.vertx.core.net.PemTrustOptions;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.function.BooleanSupplier;

/**
 * The sidecar's HTTP surface (Vert.x Web): {@code GET /health/live}, {@code GET /health/ready},
 * {@code GET /metrics} (Prometheus text, OpenMetrics or protobuf by {@code Accept}),
 * {@code POST /v1/encode}, {@code POST /v1/check}, {@code GET /v1/detectors},
 * {@code GET|PUT|DELETE /v1/detectors/{id}} (changes go through the detector registry topic, so every replica follows), the live page: {@code GET /},
 * {@code GET /v1/alerts/stream} (server-sent events: {@code alert} and {@code review}), {@code GET /v1/alerts},
 * {@code GET /v1/features/top}, {@code GET /v1/requests/{request_id}/decisions} (one request's decisions, read back from
 * the decisions topic), and reviews: {@code POST /v1/alerts/{request_id}/{seq}/review}, {@code GET /v1/reviews}
 * (verdicts go through the compacted reviews topic, so every replica shows them). Encoding and detection run on the engine
 * thread; handlers never block the event loop, and results come back with the engine's future
 * (completed on the engine thread, then delivered on this verticle's context).
 *
 * <p>Request body: an activation record (safetensors, {@code application/octet-stream}), JSON
 * {@code {"request_id", "sae" | "model"+"hook", "position", "activations": [[...], ...]}}, or, when the sidecar has a
 * prompt model ({@code prompts:}), JSON {@code {"request_id", "text"}}: the text runs through the prompt model to the
 * SAE serving it, as a prompt event would (the text is never logged).
 * Errors are JSON {@code {"error": "..."}} with 400; a full engine queue is 503 with
 * {@code Retry-After}.
 *
 * <p>Authentication ({@code http.auth}): with tokens configured every endpoint but {@code /health/*} (and
 * {@code /metrics} when {@code http.auth.metrics: open}) needs {@code Authorization: Bearer <token>}: none or an unknown
 * one is a 401 with {@code WWW-Authenticate: Bearer}, a token without the endpoint's scope a 403. Scope {@code read}:
 * the page, the alerts and their stream, a request's decisions, the reviews, features, check, encode, the detector listing (and {@code /metrics} unless open);
 * {@code admin}: {@code PUT} and {@code DELETE} of detectors; {@code review}: {@code POST} of a review. Every failure, 404 and 405 included, is JSON; a body over an
 * endpoint's limit is a 413.
 *
 * <p>Size: about 540 lines, one class on purpose: the route table, the authentication and scope checks it wires in
 * front of each route, and the handlers that answer them; request bodies ({@link CheckBodies}), body reading and
 * replies ({@link Replies}) and the features JSON ({@link FeaturesJson}) are their own classes.
 */
public final class HttpApi extends VerticleBase {
    private static final org.slf4j.Logger LOGGER = org.slf4j.LoggerFactory.getLogger(HttpApi.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final ExpositionFormats FORMATS = ExpositionFormats.init();
    /** Engine tasks queued beyond which synchronous calls are refused (the stream keeps priority). */
    public static final int MAX_QUEUED = 10_000;

    /** Largest {@code /v1/check} and {@code /v1/encode} body: a 2k-token F32 chunk at d_in 4096 is 32 MiB. */
    public static final long MAX_CHECK_BYTES = 32L * 1024 * 1024;
    /** Largest detector definition. */
    static final long MAX_DETECTOR_BYTES = 1024 * 1024;
    /** Largest review body: a 2000-character note is at most 8 KB of UTF-8, escaped perhaps 12 KB. */
    static final long MAX_REVIEW_BYTES = 16 * 1024;
    /** Alerts replayed to a page that connects to the stream, and the default of {@code GET /v1/alerts}. */
    static final int REPLAYED_ALERTS = 50;
    /** Routing-context keys: the caller's token name, and its scopes. */
    static final String CALLER = "saeguard.caller";
    static final String SCOPES = "saeguard.scopes";

    private final String host;
    private final int port;
    private final SidecarConfig.Auth auth;
    private final Authenticator authenticator;
    private final Optional<SidecarConfig.Tls> tls;
    private final BooleanSupplier ready;
    private final PrometheusRegistry metricsRegistry;
    private final EngineLoop engine;
    private final DetectorRegistry detectors;
    private final SaeRouter router;
    private final Reviews reviews;
    private final Metrics metrics;
    private final CheckBodies bodies;
    private Buffer page;
    private HttpServer server;

    /** @param promptSae the SAE that serves the prompt model's hidden states, when the sidecar has one ({@code prompts:}) */
    public HttpApi(SidecarConfig.Http http, BooleanSupplier ready, PrometheusRegistry registry, EngineLoop engine,
            DetectorRegistry detectors, SaeRouter router, Reviews reviews, Metrics metrics, Optional<String> promptSae) {
        this.detectors = detectors;
        this.reviews = reviews;
        this.metrics = metrics;
        this.bodies = new CheckBodies(router, promptSae);
        this.host = http.host();
        this.port = http.port();
        this.auth = http.auth();
        this.authenticator = new Authenticator(http.auth().tokens());
        this.tls = http.tls();
        this.ready = ready;
        this.metricsRegistry = registry;
        this.engine = engine;
        this.router = router;
    }

    @Override
    public Future<?> start() {
        try (java.io.InputStream in = HttpApi.class.getResourceAsStream("index.html")) {
            page = Buffer.buffer(Objects.requireNonNull(in, "index.html missing from the jar").readAllBytes());
        } catch (IOException e) {
            return Future.failedFuture(e);
        }
        Router r = Router.router(vertx);
        r.get("/health/live").handler(ctx -> json(ctx, 200, "{\"status\":\"up\"}"));
        r.get("/health/ready").handler(ctx -> {
            boolean ok = ready.getAsBoolean();
            json(ctx, ok ? 200 : 503, ok ? "{\"status\":\"ready\"}" : "{\"status\":\"not-ready\"}");
        });
        if (auth.metricsOpen()) {
            r.get("/metrics").handler(this::metrics);
        }
        // Everything below needs a valid token (when tokens are configured), known path or not: an unauthenticated
        // caller learns nothing about the API, and is refused before its body is read.
        r.route().handler(this::authenticate);
        r.get("/").handler(scope(Scope.READ)).handler(ctx -> ctx.response().putHeader("Content-Type", "text/html; charset=utf-8")
                .putHeader("Cache-Control", "no-cache").end(page));
        if (!auth.metricsOpen()) {
            r.get("/metrics").handler(scope(Scope.READ)).handler(this::metrics);
        }
        r.get("/v1/alerts/stream").handler(scope(Scope.READ)).handler(this::alertStream);
        r.get("/v1/alerts").handler(scope(Scope.READ)).handler(this::listAlerts);
        r.post("/v1/alerts/:request_id/:seq/review").handler(scope(Scope.REVIEW)).handler(bodyLimit(MAX_REVIEW_BYTES)).handler(this::review);
        r.get("/v1/requests/:request_id/decisions").handler(scope(Scope.READ)).handler(this::requestDecisions);
        r.get("/v1/reviews").handler(scope(Scope.READ)).handler(ctx -> json(ctx, 200, ReviewBodies.reviews(reviews.reviews().all())));
        r.get("/v1/features/top").handler(scope(Scope.READ)).handler(this::topFeatures);
        r.post("/v1/encode").handler(scope(Scope.READ)).handler(bodyLimit(MAX_CHECK_BYTES)).handler(ctx -> run(ctx, false));
        r.post("/v1/check").handler(scope(Scope.READ)).handler(bodyLimit(MAX_CHECK_BYTES)).handler(ctx -> run(ctx, true));
        r.get("/v1/detectors").handler(scope(Scope.READ)).handler(this::listDetectors);
        r.get("/v1/detectors/:id").handler(scope(Scope.READ)).handler(this::getDetector);
        r.put("/v1/detectors/:id").handler(scope(Scope.ADMIN)).handler(bodyLimit(MAX_DETECTOR_BYTES)).handler(this::putDetector);
        r.delete("/v1/detectors/:id").handler(scope(Scope.ADMIN)).handler(this::deleteDetector);
        r.route().failureHandler(this::failure);
        r.errorHandler(404, ctx -> refuse(ctx, 404, error("no such endpoint: " + ctx.request().method() + " " + ctx.normalizedPath())));
        r.errorHandler(405, ctx -> refuse(ctx, 405, error("method " + ctx.request().method() + " is not allowed on " + ctx.normalizedPath())));
        HttpServerOptions options = new HttpServerOptions().setPort(port).setHost(host);
        tls.ifPresent(t -> {
            options.setSsl(true).setKeyCertOptions(new PemKeyCertOptions().setCertPath(t.cert().toString()).setKeyPath(t.key().toString()));
            t.clientCa().ifPresent(ca -> options.setTrustOptions(new PemTrustOptions().addCertPath(ca.toString()))
                    .setClientAuth(ClientAuth.REQUIRED));
        });
        return vertx.createHttpServer(options).requestHandler(req -> {
            // The router decodes the path before any handler runs and logs a malformed escape as an unhandled exception.
            if (!wellEscaped(req.path())) {
                req.response().setStatusCode(400).putHeader("Content-Type", "application/json")
                        .end(error("the path holds a '%' that is not followed by two hex digits"));
                return;
            }
            r.handle(req);
        }).listen().onSuccess(s -> server = s);
    }

    /**
     * Refuses a request without a valid token (401, {@code WWW-Authenticate: Bearer}); with authentication off, every
     * request passes as {@link Authenticator#ANONYMOUS}. The token's name is kept for the handlers ({@link #CALLER}).
     */
    private void authenticate(RoutingContext ctx) {
        if (!auth.required()) {
            ctx.put(CALLER, Authenticator.ANONYMOUS);
            ctx.put(SCOPES, java.util.EnumSet.allOf(Scope.class));
            ctx.next();
            return;
        }
        Optional<SidecarConfig.Token> token = authenticator.identify(Optional.ofNullable(ctx.request().getHeader("Authorization")));
        if (token.isEmpty()) {
            boolean hasHeader = ctx.request().getHeader("Authorization") != null;
            ctx.response().headers().add("WWW-Authenticate", hasHeader ? "Bearer realm=\"saeguard\", error=\"invalid_token\""
                    : "Bearer realm=\"saeguard\"");
            if (ctx.request().method() == HttpMethod.GET && ctx.normalizedPath().equals("/")) {
                ctx.response().headers().add("WWW-Authenticate", "Basic realm=\"saeguard\", charset=\"UTF-8\""); // the browser's prompt
            }
            refuse(ctx, 401, error(hasHeader ? "the token is not valid" : "this endpoint needs a bearer token (Authorization: Bearer <token>)"));
            return;
        }
        ctx.put(CALLER, token.get().name());
        ctx.put(SCOPES, token.get().scopes());
        ctx.next();
    }

    /** Passes requests whose token has {@code scope}; 403 otherwise. */
    private static io.vertx.core.Handler<RoutingContext> scope(Scope scope) {
        return ctx -> {
            java.util.Set<Scope> scopes = ctx.get(SCOPES);
            if (scopes != null && scopes.contains(scope)) {
                ctx.next();
                return;
            }
            ctx.response().putHeader("WWW-Authenticate", "Bearer realm=\"saeguard\", error=\"insufficient_scope\", scope=\"" + scope.key()
                    + "\"");
            refuse(ctx, 403, error("token '" + ctx.get(CALLER) + "' lacks scope '" + scope.key() + "' needed by " + ctx.request().method()
                    + " " + ctx.normalizedPath()));
        };
    }

    /**
     * Maps every failure the router sees to a JSON answer: an HTTP status set by a handler (413 from the body reader,
     * 400 from a bad path) keeps it; an exception goes through {@link #fail}, so nothing escapes unlogged or as HTML.
     */
    private void failure(RoutingContext ctx) {
        if (ctx.response().ended() || ctx.response().headWritten()) {
            if (!ctx.response().ended()) {
                ctx.response().reset();
            }
            return;
        }
        Throwable err = ctx.failure();
        int status = ctx.statusCode();
        if (err == null || err instanceof io.vertx.ext.web.handler.HttpException) {
            int code = err instanceof io.vertx.ext.web.handler.HttpException h ? h.getStatusCode() : status;
            if (code >= 400 && code < 500) {
                refuse(ctx, code, error(code == 413 ? "body is over this endpoint's limit" : "request refused ("
                        + io.netty.handler.codec.http.HttpResponseStatus.valueOf(code).reasonPhrase() + ")"));
                return;
            }
        }
        fail(ctx, err != null ? err : new IllegalStateException("HTTP status " + status));
    }

    /** The bound port (when 0 was asked for). */
    public int actualPort() {
        return server.actualPort();
    }

    private void metrics(RoutingContext ctx) {
        String accept = ctx.request().getHeader("Accept");
        ExpositionFormatWriter writer = FORMATS.findWriter(accept);
        vertx.executeBlocking(() -> {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            writer.write(out, metricsRegistry.scrape());
            return Buffer.buffer(out.toByteArray());
        }, false).onSuccess(b -> ctx.response().putHeader("Content-Type", writer.getContentType()).end(b)).onFailure(ctx::fail);
    }

    /**
     * Server-sent events: the recent alerts first ({@value #REPLAYED_ALERTS}, oldest first) and the current reviews of
     * those, then each new alert as this replica reads it from the alerts topic ({@code event: alert}, data = the alert's
     * JSON) and each new or changed verdict from the reviews topic ({@code event: review}, data = the review's JSON), and
     * a comment every 15 s to keep proxies from closing the stream. A client that cannot keep up misses events rather than
     * growing a queue.
     */
    private void alertStream(RoutingContext ctx) {
        io.vertx.core.http.HttpServerResponse res = ctx.response();
        res.setChunked(true).putHeader("Content-Type", "text/event-stream").putHeader("Cache-Control", "no-cache")
                .putHeader("X-Accel-Buffering", "no");
        res.write(": saeguard alerts\n\n");
        java.util.List<AlertLog.Entry> recent = reviews.alerts().recent(REPLAYED_ALERTS);
        for (AlertLog.Entry a : recent) {
            res.write("event: alert\ndata: " + a.json() + "\n\n");
        }
        for (AlertLog.Entry a : recent) {
            reviews.reviews().get(a.requestId(), a.seq(), a.detector()).ifPresent(rv -> res.write("event: review\ndata: " + ReviewBodies.review(rv) + "\n\n"));
        }
        io.vertx.core.Context vc = vertx.getOrCreateContext();
        java.util.function.Consumer<String> send = event -> vc.runOnContext(v -> {
            if (!res.closed() && !res.writeQueueFull()) {
                res.write(event);
            }
        });
        Runnable unsubscribeAlerts = reviews.alerts().subscribe(a -> send.accept("event: alert\ndata: " + a.json() + "\n\n"));
        Runnable unsubscribeReviews = reviews.reviews().subscribe(rv -> send.accept("event: review\ndata: " + ReviewBodies.review(rv) + "\n\n"));
        long timer = vertx.setPeriodic(15_000, id -> {
            if (!res.closed()) {
                res.write(": keep-alive\n\n");
            }
        });
        res.closeHandler(v -> {
            unsubscribeAlerts.run();
            unsubscribeReviews.run();
            vertx.cancelTimer(timer);
        });
    }

    /**
     * The recent alerts from the alerts topic, oldest first, each with its {@code "review"} when reviewed:
     * {@code GET /v1/alerts?limit=50} ({@code limit} 1..{@value AlertLog#KEEP}).
     */
    private void listAlerts(RoutingContext ctx) {
        int limit;
        try {
            limit = Integer.parseInt(Optional.ofNullable(ctx.queryParams().get("limit")).orElse(Integer.toString(REPLAYED_ALERTS)));
            if (limit < 1 || limit > AlertLog.KEEP) {
                throw new NumberFormatException();
            }
        } catch (NumberFormatException e) {
            json(ctx, 400, error("limit must be an integer in 1.." + AlertLog.KEEP));
            return;
        }
        ArrayNode list = JSON.createArrayNode();
        for (AlertLog.Entry a : reviews.alerts().recent(limit)) {
            list.add(ReviewBodies.alert(a, reviews.reviews().get(a.requestId(), a.seq(), a.detector())));
        }
        json(ctx, 200, JSON.createObjectNode().set("alerts", list).toString());
    }

    /**
     * A reviewer's verdict on one alert, for every replica: {@code POST /v1/alerts/{request_id}/{seq}/review} with
     * {@code {"verdict": "true_positive" | "false_positive" | "unsure", "note": "...", "detector": "..."}}. The request id
     * is the path segment, percent-decoded (a request id holding {@code /} must send it as {@code %2F}). The alert must be
     * in this replica's alert log (404 otherwise): the review's detector is the alert's. Several detectors can alert on
     * the same chunk (same seq): then {@code detector} must name one of them (400 otherwise); it may always be sent. The verdict is published to the reviews
     * topic under the reviewer's token name; the answer (the review's JSON) comes once Kafka acknowledged it, or is a 503.
     */
    private void review(RoutingContext ctx) {
        String requestId = ctx.pathParam("request_id");
        long seq;
        ReviewBodies.ReviewRequest req;
        try {
            seq = ReviewBodies.seq(ctx.pathParam("seq"));
            req = ReviewBodies.parse(body(ctx).getBytes());
        } catch (InvalidRequestException e) {
            json(ctx, 400, error(e.getMessage()));
            return;
        }
        String alertId = Review.alertId(requestId, seq);
        java.util.Set<String> alerted = reviews.alerts().detectorsOf(requestId, seq);
        if (alerted.isEmpty() || req.detector().isPresent() && !alerted.contains(req.detector().get())) {
            json(ctx, 404, error(alerted.isEmpty() ? "alert '" + alertId + "' is unknown to this replica: it reads the alerts topic from "
                    + AlertLog.TAIL + " records before each partition's end at start and keeps the last " + AlertLog.INDEX
                    + " alert ids; check the request id and seq (GET /v1/alerts)"
                    : "detector '" + req.detector().get() + "' raised no alert '" + alertId + "'; these did: " + String.join(", ", alerted)));
            return;
        }
        if (req.detector().isEmpty() && alerted.size() > 1) {
            json(ctx, 400, error("detectors " + String.join(", ", alerted) + " all alerted on '" + alertId + "': name the one reviewed with "
                    + "\"detector\""));
            return;
        }
        String detector = req.detector().orElse(alerted.iterator().next());
        String who = ctx.get(CALLER);
        Review review = new Review(requestId, seq, req.verdict(), detector, who, req.note(), System.currentTimeMillis());
        boolean changed = reviews.reviews().get(requestId, seq, detector).map(was -> was.verdict() != review.verdict()).orElse(true);
        io.vertx.core.Context vc = vertx.getOrCreateContext();
        reviews.reviews().publish(review).whenComplete((done, err) -> vc.runOnContext(v -> {
            if (err != null) {
                fail(ctx, err);
                return;
            }
            if (changed) {
                metrics.reviewVerdicts.labelValues(review.detector(), review.verdict().wireName()).inc();
            }
            LOGGER.atInfo().addKeyValue("alert", alertId).addKeyValue("detector", review.detector())
                    .addKeyValue("verdict", review.verdict().wireName()).addKeyValue("who", who).log("alert reviewed");
            json(ctx, 200, ReviewBodies.review(review));
        }));
    }

    /**
     * One request's decisions from the decisions topic, in seq order, for the page's per-request view:
     * {@code GET /v1/requests/{request_id}/decisions} answers {@code {"request_id", "decisions": [decision...], "scanned",
     * "complete"}} ({@link io.saeguard.sidecar.review.RequestDecisions} says how far it looks). An unknown request is an
     * empty list, never a 404; a malformed id is a 400. The lookup blocks on Kafka, so it runs on a worker thread.
     */
    private void requestDecisions(RoutingContext ctx) {
        String requestId;
        try {
            requestId = ReviewBodies.requestId(ctx.pathParam("request_id"));
        } catch (InvalidRequestException e) {
            json(ctx, 400, error(e.getMessage()));
            return;
        }
        Optional<AlertLog.Alerted> alerted = reviews.alerts().ofRequest(requestId);
        vertx.executeBlocking(() -> ReviewBodies.decisions(reviews.decisions().read(requestId, alerted)), false)
                .onSuccess(body -> json(ctx, 200, body)).onFailure(err -> fail(ctx, err));
    }

    /**
     * The most frequent features per SAE, with the watched ones, their labels, fire rates and
     * baseline densities, plus the SAE's health figures: {@code GET /v1/features/top?n=20}.
     */
    private void topFeatures(RoutingContext ctx) {
        int n;
        try {
            n = Integer.parseInt(Optional.ofNullable(ctx.queryParams().get("n")).orElse("20"));
            if (n < 1 || n > 1000) {
                throw new NumberFormatException();
            }
        } catch (NumberFormatException e) {
            json(ctx, 400, error("n must be an integer in 1..1000"));
            return;
        }
        vertx.executeBlocking(() -> FeaturesJson.top(engine.featureStats(), engine.watchedFeatures(), engine.featureLabels(), n), false).onSuccess(body -> json(ctx, 200, body)).onFailure(ctx::fail);
    }

    private void listDetectors(RoutingContext ctx) {
        ArrayNode list = JSON.createArrayNode();
        for (DetectorDefinition d : engine.detectorDefinitions()) {
            list.addObject().put("id", d.id()).put("sae", d.sae()).put("yaml", DetectorDefinitions.toYaml(d));
        }
        json(ctx, 200, JSON.createObjectNode().set("detectors", list).toString());
    }

    private void getDetector(RoutingContext ctx) {
        String id = ctx.pathParam("id");
        Optional<DetectorDefinition> def = engine.detectorDefinitions().stream().filter(d -> d.id().equals(id)).findFirst();
        if (def.isEmpty()) {
            json(ctx, 404, error("unknown detector '" + id + "'"));
        } else {
            ctx.response().putHeader("Content-Type", "application/yaml").end(DetectorDefinitions.toYaml(def.get()));
        }
    }

    /**
     * Replaces (or adds) one detector from a YAML body, for every replica: the definition is validated here first (one
     * that does not parse, names another id, names an SAE this sidecar does not load or a feature that SAE does not
     * have, is a 400 and is never published), then published to the detector registry; the answer comes once this
     * replica applied it ("replaced" or "added"), or is a 503 when the registry did not take it or it was not applied
     * in time.
     */
    private void putDetector(RoutingContext ctx) {
        String id = ctx.pathParam("id");
        DetectorDefinition def;
        try {
            Buffer body = body(ctx);
            if (body.length() == 0) {
                throw new InvalidRequestException("empty body: send the detector's YAML");
            }
            def = DetectorDefinitions.parse(body.getBytes(), "PUT /v1/detectors/" + id);
            if (!def.id().equals(id)) {
                throw new InvalidRequestException("the body's id '" + def.id() + "' differs from the path's '" + id + "'");
            }
            engine.validate(def);
        } catch (DetectorConfigException | InvalidRequestException e) {
            json(ctx, 400, error(e.getMessage()));
            return;
        }
        io.vertx.core.Context vc = vertx.getOrCreateContext();
        detectors.publish(id, Optional.of(body(ctx).getBytes()), ctx.get(CALLER)).whenComplete((existed, err) -> vc.runOnContext(v -> {
            if (err != null) {
                fail(ctx, err);
                return;
            }
            LOGGER.atInfo().addKeyValue("detector", id).addKeyValue("sae", def.sae()).addKeyValue("who", (String) ctx.get(CALLER))
                    .log(existed ? "detector replaced" : "detector added");
            json(ctx, 200, JSON.createObjectNode().put("id", id).put("status", existed ? "replaced" : "added").toString());
        }));
    }

    /**
     * Removes one detector from every replica: a tombstone in the detector registry, answered once this replica applied
     * it (200); 404 when neither the registry nor this replica has the id (nothing is published).
     */
    private void deleteDetector(RoutingContext ctx) {
        String id = ctx.pathParam("id");
        if (!detectors.holds(id) && engine.detectorDefinitions().stream().noneMatch(d -> d.id().equals(id))) {
            json(ctx, 404, error("unknown detector '" + id + "'"));
            return;
        }
        io.vertx.core.Context vc = vertx.getOrCreateContext();
        detectors.publish(id, Optional.empty(), ctx.get(CALLER)).whenComplete((existed, err) -> vc.runOnContext(v -> {
            if (err != null) {
                fail(ctx, err);
            } else {
                LOGGER.atInfo().addKeyValue("detector", id).addKeyValue("who", (String) ctx.get(CALLER)).log("detector removed");
                json(ctx, 200, JSON.createObjectNode().put("id", id).put("status", "removed").toString());
            }
        }));
    }

    private void run(RoutingContext ctx, boolean check) {
        CheckRequest req;
        CompletableFuture<CheckResult> result;
        try {
            req = bodies.parse(ctx);
            if (engine.queued() > MAX_QUEUED) {
                ctx.response().putHeader("Retry-After", "1");
                json(ctx, 503, error("engine queue is full (" + engine.queued() + " tasks); retry shortly"));
                return;
            }
            result = check ? engine.check(req) : engine.encode(req);
        } catch (RuntimeException | DecodeException | IOException e) {
            fail(ctx, e);
            return;
        }
        io.vertx.core.Context vc = vertx.getOrCreateContext();
        result.whenComplete((r, err) -> vc.runOnContext(v -> {
            if (err != null) {
                fail(ctx, err);
            } else {
                json(ctx, 200, check ? CheckBodies.checkResponse(r.outcome().orElseThrow()) : CheckBodies.encodeResponse(r));
            }
        }));
    }

    /**
     * Answers a failed request: the caller's error (an invalid request, an undecodable record, an invalid detector, bad
     * JSON) is a 400 with its message; anything else is the sidecar's own failure, a 500 naming an id under which the
     * error and its stack trace are logged (the message may hold what the caller should not see).
     */
    private static void fail(RoutingContext ctx, Throwable err) {
        Throwable cause = err instanceof java.util.concurrent.CompletionException && err.getCause() != null ? err.getCause() : err;
        if (cause instanceof InvalidRequestException || cause instanceof DecodeException || cause instanceof DetectorConfigException
                || cause instanceof com.fasterxml.jackson.core.JacksonException) {
            json(ctx, 400, error(cause.getMessage()));
            return;
        }
        if (cause instanceof RegistryUnavailableException || cause instanceof ReviewUnavailableException) {
            LOGGER.atWarn().addKeyValue("path", ctx.request().path()).log("change not confirmed: {}", cause.getMessage());
            ctx.response().putHeader("Retry-After", "1");
            json(ctx, 503, error(cause.getMessage()));
            return;
        }
        String id = java.util.UUID.randomUUID().toString().substring(0, 8);
        LOGGER.atError().addKeyValue("errorId", id).addKeyValue("path", ctx.request().path()).setCause(cause)
                .log("HTTP request failed: {}", cause.toString());
        json(ctx, 500, error("internal error " + id + " (logged under this id)"));
    }


}
