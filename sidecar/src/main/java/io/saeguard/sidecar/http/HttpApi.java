package io.saeguard.sidecar.http;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.prometheus.metrics.expositionformats.ExpositionFormatWriter;
import io.prometheus.metrics.expositionformats.ExpositionFormats;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.saeguard.detectors.ChunkOutcome;
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
import io.saeguard.sidecar.pipeline.SpecialMask;
import io.saeguard.topics.DecodeException;
import io.saeguard.topics.activation.ActivationChunk;
import io.saeguard.topics.activation.ActivationCodec;
import io.saeguard.topics.codes.SparseCodes;
import io.saeguard.topics.events.Alert;
import io.saeguard.topics.events.EventCodec;
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
 * {@code GET|PUT|DELETE /v1/detectors/{id}} (changes go through the detector registry topic, so every replica follows), and the live page: {@code GET /},
 * {@code GET /v1/alerts/stream} (server-sent events), {@code GET /v1/features/top}. Encoding and detection run on the engine
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
 * the page, the alert stream, features, check, encode, the detector listing (and {@code /metrics} unless open);
 * {@code admin}: {@code PUT} and {@code DELETE} of detectors. Every failure, 404 and 405 included, is JSON; a body over an
 * endpoint's limit is a 413.
 */
public final class HttpApi extends VerticleBase {
    private static final org.slf4j.Logger LOGGER = org.slf4j.LoggerFactory.getLogger(HttpApi.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final EventCodec CODEC = new EventCodec();
    private static final ExpositionFormats FORMATS = ExpositionFormats.init();
    /** Engine tasks queued beyond which synchronous calls are refused (the stream keeps priority). */
    public static final int MAX_QUEUED = 10_000;

    /** Largest {@code /v1/check} and {@code /v1/encode} body: a 2k-token F32 chunk at d_in 4096 is 32 MiB. */
    public static final long MAX_CHECK_BYTES = 32L * 1024 * 1024;
    /** Largest detector definition. */
    static final long MAX_DETECTOR_BYTES = 1024 * 1024;
    /** Bytes of a refused body read and discarded before the connection is closed instead. */
    static final long DRAIN_LIMIT = 64L * 1024 * 1024;
    /** Routing-context keys: the caller's token name, and its scopes. */
    static final String CALLER = "saeguard.caller";
    static final String SCOPES = "saeguard.scopes";
    static final String BODY = "saeguard.body";

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
    private final AlertFeed alerts;
    private final Optional<String> promptSae;
    private Buffer page;
    private HttpServer server;

    /** @param promptSae the SAE that serves the prompt model's hidden states, when the sidecar has one ({@code prompts:}) */
    public HttpApi(SidecarConfig.Http http, BooleanSupplier ready, PrometheusRegistry registry, EngineLoop engine,
            DetectorRegistry detectors, SaeRouter router, AlertFeed alerts, Optional<String> promptSae) {
        this.detectors = detectors;
        this.alerts = alerts;
        this.promptSae = promptSae;
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
     * Reads the body, as bytes, up to {@code limit} bytes (never as a form: a form or multipart content type is just
     * bytes here). A declared {@code Content-Length} over the limit is refused at once (413), without buffering it; a
     * chunked body that grows past it is refused when it does. The handlers find the body under {@link #BODY}.
     */
    private static io.vertx.core.Handler<RoutingContext> bodyLimit(long limit) {
        return ctx -> {
            io.vertx.core.http.HttpServerRequest req = ctx.request();
            String length = req.getHeader("Content-Length");
            if (length != null) {
                long declared;
                try {
                    declared = Long.parseLong(length.strip());
                } catch (NumberFormatException e) {
                    refuse(ctx, 400, error("Content-Length is not a number"));
                    return;
                }
                if (declared > limit) {
                    refuse(ctx, 413, error("body of " + declared + " bytes is over this endpoint's limit of " + limit + " bytes"));
                    return;
                }
            }
            if (req.isEnded()) {
                ctx.put(BODY, Buffer.buffer());
                ctx.next();
                return;
            }
            Buffer body = Buffer.buffer();
            boolean[] refused = {false};
            req.handler(b -> {
                if (body.length() + b.length() > limit) {
                    refused[0] = true;
                    refuse(ctx, 413, error("body is over this endpoint's limit of " + limit + " bytes"));
                } else {
                    body.appendBuffer(b);
                }
            });
            req.endHandler(v -> {
                if (!refused[0]) {
                    ctx.put(BODY, body);
                    ctx.next();
                }
            });
            req.resume();
        };
    }

    private static Buffer body(RoutingContext ctx) {
        Buffer b = ctx.get(BODY);
        return b != null ? b : Buffer.buffer();
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

    /**
     * Answers a 4xx. When the request's body is still arriving, it is read and thrown away (up to {@link #DRAIN_LIMIT}
     * bytes) so the client sees the answer rather than a connection reset while it is still sending.
     */
    private static void refuse(RoutingContext ctx, int status, String body) {
        io.vertx.core.http.HttpServerRequest req = ctx.request();
        if (!req.isEnded()) {
            long[] seen = {0};
            req.handler(b -> {
                seen[0] += b.length();
                if (seen[0] > DRAIN_LIMIT) {
                    req.connection().close();
                }
            });
            req.resume();
        }
        json(ctx, status, body);
    }

    /** Whether every {@code %} in {@code path} starts a two-hex-digit escape. */
    static boolean wellEscaped(String path) {
        for (int i = path.indexOf('%'); i >= 0; i = path.indexOf('%', i + 1)) {
            if (i + 2 >= path.length() || Character.digit(path.charAt(i + 1), 16) < 0 || Character.digit(path.charAt(i + 2), 16) < 0) {
                return false;
            }
        }
        return true;
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
     * Server-sent events: the recent alerts first, then each new one as it is acknowledged by Kafka
     * ({@code event: alert}, data = the alert's JSON), and a comment every 15 s to keep proxies from
     * closing the stream. A client that cannot keep up misses alerts rather than growing a queue.
     */
    private void alertStream(RoutingContext ctx) {
        io.vertx.core.http.HttpServerResponse res = ctx.response();
        res.setChunked(true).putHeader("Content-Type", "text/event-stream").putHeader("Cache-Control", "no-cache")
                .putHeader("X-Accel-Buffering", "no");
        res.write(": saeguard alerts\n\n");
        for (String json : alerts.recent()) {
            res.write("event: alert\ndata: " + json + "\n\n");
        }
        io.vertx.core.Context vc = vertx.getOrCreateContext();
        Runnable unsubscribe = alerts.subscribe(json -> vc.runOnContext(v -> {
            if (!res.closed() && !res.writeQueueFull()) {
                res.write("event: alert\ndata: " + json + "\n\n");
            }
        }));
        long timer = vertx.setPeriodic(15_000, id -> {
            if (!res.closed()) {
                res.write(": keep-alive\n\n");
            }
        });
        res.closeHandler(v -> {
            unsubscribe.run();
            vertx.cancelTimer(timer);
        });
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
        vertx.executeBlocking(() -> {
            ObjectNode root = JSON.createObjectNode();
            ArrayNode list = root.putArray("saes");
            java.util.Map<String, java.util.Set<Integer>> watched = engine.watchedFeatures();
            java.util.Map<String, java.util.Map<Integer, String>> labels = engine.featureLabels();
            for (io.saeguard.sidecar.metrics.FeatureStats s : engine.featureStats()) {
                ObjectNode o = list.addObject().put("sae", s.sae()).put("d_sae", s.dSae()).put("tokens", s.tokens())
                        .put("dead_features", s.deadFeatures());
                s.drift().ifPresent(d -> o.put("drift_js", d));
                s.fvu().ifPresent(v -> o.put("fvu", v));
                ArrayNode fs = o.putArray("features");
                java.util.Set<Integer> mine = watched.getOrDefault(s.sae(), java.util.Set.of());
                java.util.Map<Integer, String> named = labels.getOrDefault(s.sae(), java.util.Map.of());
                java.util.LinkedHashSet<Integer> ids = new java.util.LinkedHashSet<>();
                for (int f : s.topFeatures(n)) {
                    ids.add(f);
                }
                ids.addAll(new java.util.TreeSet<>(mine));
                for (int f : ids) {
                    if (f < 0 || f >= s.dSae()) {
                        continue;
                    }
                    ObjectNode fo = fs.addObject().put("id", f).put("fires", s.fires(f)).put("fire_rate", s.fireRate(f))
                            .put("watched", mine.contains(f));
                    s.baselineDensity(f).ifPresent(d -> fo.put("baseline_density", d));
                    Optional.ofNullable(named.get(f)).ifPresent(l -> fo.put("label", l));
                }
            }
            return root.toString();
        }, false).onSuccess(body -> json(ctx, 200, body)).onFailure(ctx::fail);
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
            req = parse(ctx);
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
                json(ctx, 200, check ? checkResponse(r.outcome().orElseThrow()) : encodeResponse(r));
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
        if (cause instanceof RegistryUnavailableException) {
            LOGGER.atWarn().addKeyValue("path", ctx.request().path()).log("detector change not confirmed: {}", cause.getMessage());
            ctx.response().putHeader("Retry-After", "1");
            json(ctx, 503, error(cause.getMessage()));
            return;
        }
        String id = java.util.UUID.randomUUID().toString().substring(0, 8);
        LOGGER.atError().addKeyValue("errorId", id).addKeyValue("path", ctx.request().path()).setCause(cause)
                .log("HTTP request failed: {}", cause.toString());
        json(ctx, 500, error("internal error " + id + " (logged under this id)"));
    }

    private CheckRequest parse(RoutingContext ctx) throws DecodeException, IOException {
        Buffer body = body(ctx);
        if (body.length() == 0) {
            throw new InvalidRequestException("empty body: send an activation record (application/octet-stream) or JSON");
        }
        String type = Optional.ofNullable(ctx.request().getHeader("Content-Type")).orElse("");
        if (type.startsWith("application/json")) {
            JsonNode j;
            try {
                j = JSON.readTree(body.getBytes());
            } catch (IOException e) {
                throw new InvalidRequestException("the body is not valid JSON: " + e.getMessage().lines().findFirst().orElse(""));
            }
            if (j == null || !j.isObject()) {
                throw new InvalidRequestException("JSON body must be an object");
            }
            String requestId = text(j, "request_id").orElse("http-" + System.nanoTime());
            JsonNode textNode = j.get("text");
            if (textNode != null) {
                if (j.has("activations")) {
                    throw new InvalidRequestException("give 'text' or 'activations', not both");
                }
                if (!textNode.isTextual() || textNode.textValue().isEmpty()) {
                    throw new InvalidRequestException("'text' must be a non-empty string");
                }
                String sae = promptSae.orElseThrow(() -> new InvalidRequestException("this sidecar has no prompt model ('prompts:' "
                        + "in its config), so it cannot check text; send activations"));
                return CheckRequest.ofText(requestId, sae, textNode.textValue());
            }
            JsonNode acts = j.get("activations");
            if (acts == null || !acts.isArray() || acts.isEmpty() || !acts.get(0).isArray()) {
                throw new InvalidRequestException("'activations' must be a non-empty array of arrays [tokens][d_in]");
            }
            int tokens = acts.size();
            int dIn = acts.get(0).size();
            float[] x = new float[tokens * dIn];
            for (int t = 0; t < tokens; t++) {
                JsonNode row = acts.get(t);
                if (!row.isArray() || row.size() != dIn) {
                    throw new InvalidRequestException("activations[" + t + "] must have " + dIn + " numbers");
                }
                for (int i = 0; i < dIn; i++) {
                    if (!row.get(i).isNumber()) {
                        throw new InvalidRequestException("activations[" + t + "][" + i + "] is not a number");
                    }
                    x[t * dIn + i] = (float) row.get(i).asDouble();
                }
            }
            Optional<String> named = text(j, "sae");
            String sae = router.route(named, text(j, "model"), text(j, "hook")).orElseThrow(() -> new InvalidRequestException(
                    named.isPresent() ? "unknown SAE id '" + named.get() + "' (configured: " + router.ids() + ")"
                            : "give 'sae' (an SAE id) or 'model' and 'hook' that a configured SAE serves (configured: " + router.ids() + ")"));
            return new CheckRequest(requestId, sae, j.path("position").asLong(0), tokens, dIn, Optional.of(x), Optional.empty(),
                    Optional.empty(), j.path("final").asBoolean(false), Optional.empty());
        }
        ActivationChunk chunk = ActivationCodec.decode(body.getBytes());
        String sae = router.route(chunk).orElseThrow(() -> new InvalidRequestException("no configured SAE serves this record (sae "
                + chunk.sae().orElse("-") + ", model " + chunk.model().orElse("-") + ", hook " + chunk.hook().orElse("-") + ")"));
        return new CheckRequest(chunk.requestId(), sae, chunk.position(), chunk.tokens(), chunk.dIn(), Optional.of(chunk.toFloatArray()),
                chunk.tokenIds().map(t -> t.toIntArray()), SpecialMask.marked(chunk.specialMask(), chunk.tokens()), chunk.isFinal(),
                Optional.empty());
    }

    private static Optional<String> text(JsonNode j, String key) {
        JsonNode n = j.get(key);
        return n == null || !n.isTextual() || n.textValue().isEmpty() ? Optional.empty() : Optional.of(n.textValue());
    }

    private static String encodeResponse(CheckResult result) {
        SparseCodes codes = result.codes();
        ObjectNode o = JSON.createObjectNode();
        o.put("sae", result.sae());
        o.put("d_sae", codes.dSae());
        ArrayNode tokens = o.putArray("tokens");
        for (int t = 0; t < codes.tokens(); t++) {
            ObjectNode tok = tokens.addObject();
            tok.put("position", result.position() + t);
            ArrayNode f = tok.putArray("features");
            for (int j = 0; j < codes.activeCount(t); j++) {
                f.addObject().put("id", codes.featureAt(t, j)).put("value", codes.valueAt(t, j));
            }
        }
        return o.toString();
    }

    private static String checkResponse(ChunkOutcome outcome) {
        StringBuilder sb = new StringBuilder("{\"decision\":");
        sb.append(new String(CODEC.encode(outcome.decision()), java.nio.charset.StandardCharsets.UTF_8)).append(",\"alerts\":[");
        boolean first = true;
        for (Alert a : outcome.alerts()) {
            if (!first) {
                sb.append(',');
            }
            first = false;
            sb.append(new String(CODEC.encode(a), java.nio.charset.StandardCharsets.UTF_8));
        }
        sb.append("],\"verdicts\":").append(io.saeguard.sidecar.pipeline.VerdictsJson.of(outcome.verdicts()));
        return sb.append('}').toString();
    }

    private static String error(String message) {
        return JSON.createObjectNode().put("error", String.valueOf(message)).toString();
    }

    private static void json(RoutingContext ctx, int status, String body) {
        ctx.response().setStatusCode(status).putHeader("Content-Type", "application/json").end(body);
    }
}
