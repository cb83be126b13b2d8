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
import io.saeguard.sidecar.pipeline.CheckRequest;
import io.saeguard.sidecar.pipeline.CheckResult;
import io.saeguard.sidecar.pipeline.EngineLoop;
import io.saeguard.sidecar.pipeline.InvalidRequestException;
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
import io.vertx.core.http.HttpServer;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
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
 * {@code GET|PUT /v1/detectors/{id}} (hot reload), and the live page: {@code GET /},
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
 */
public final class HttpApi extends VerticleBase {
    private static final org.slf4j.Logger LOGGER = org.slf4j.LoggerFactory.getLogger(HttpApi.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final EventCodec CODEC = new EventCodec();
    private static final ExpositionFormats FORMATS = ExpositionFormats.init();
    /** Engine tasks queued beyond which synchronous calls are refused (the stream keeps priority). */
    public static final int MAX_QUEUED = 10_000;

    private final String host;
    private final int port;
    private final BooleanSupplier ready;
    private final PrometheusRegistry registry;
    private final EngineLoop engine;
    private final SaeRouter router;
    private final AlertFeed alerts;
    private final Optional<String> promptSae;
    private Buffer page;
    private HttpServer server;

    /** @param promptSae the SAE that serves the prompt model's hidden states, when the sidecar has one ({@code prompts:}) */
    public HttpApi(String host, int port, BooleanSupplier ready, PrometheusRegistry registry, EngineLoop engine,
            SaeRouter router, AlertFeed alerts, Optional<String> promptSae) {
        this.alerts = alerts;
        this.promptSae = promptSae;
        this.host = Objects.requireNonNull(host, "host");
        this.port = port;
        this.ready = ready;
        this.registry = registry;
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
        r.get("/").handler(ctx -> ctx.response().putHeader("Content-Type", "text/html; charset=utf-8")
                .putHeader("Cache-Control", "no-cache").end(page));
        r.get("/v1/alerts/stream").handler(this::alertStream);
        r.get("/v1/features/top").handler(this::topFeatures);
        r.get("/health/live").handler(ctx -> json(ctx, 200, "{\"status\":\"up\"}"));
        r.get("/health/ready").handler(ctx -> {
            boolean ok = ready.getAsBoolean();
            json(ctx, ok ? 200 : 503, ok ? "{\"status\":\"ready\"}" : "{\"status\":\"not-ready\"}");
        });
        r.get("/metrics").handler(this::metrics);
        r.post("/v1/*").handler(BodyHandler.create().setBodyLimit(32L * 1024 * 1024));
        r.post("/v1/encode").handler(ctx -> run(ctx, false));
        r.post("/v1/check").handler(ctx -> run(ctx, true));
        r.get("/v1/detectors").handler(this::listDetectors);
        r.get("/v1/detectors/:id").handler(this::getDetector);
        r.put("/v1/detectors/:id").handler(BodyHandler.create().setBodyLimit(1024 * 1024));
        r.put("/v1/detectors/:id").handler(this::putDetector);
        return vertx.createHttpServer().requestHandler(r).listen(port, host).onSuccess(s -> server = s);
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
            writer.write(out, registry.scrape());
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
     * Replaces (or adds) one detector from a YAML body. A definition that does not validate, names
     * another id, names an SAE this sidecar does not load or a feature that SAE does not have, is refused with 400
     * and the running version stays in force.
     */
    private void putDetector(RoutingContext ctx) {
        String id = ctx.pathParam("id");
        DetectorDefinition def;
        try {
            Buffer body = ctx.body().buffer();
            if (body == null || body.length() == 0) {
                throw new InvalidRequestException("empty body: send the detector's YAML");
            }
            def = DetectorDefinitions.parse(body.getBytes(), "PUT /v1/detectors/" + id);
            if (!def.id().equals(id)) {
                throw new InvalidRequestException("the body's id '" + def.id() + "' differs from the path's '" + id + "'");
            }
        } catch (DetectorConfigException | InvalidRequestException e) {
            json(ctx, 400, error(e.getMessage()));
            return;
        }
        io.vertx.core.Context vc = vertx.getOrCreateContext();
        engine.replaceDetector(def).whenComplete((existed, err) -> vc.runOnContext(v -> {
            if (err != null) {
                fail(ctx, err);
                return;
            }
            LOGGER.atInfo().addKeyValue("detector", id).addKeyValue("sae", def.sae()).log(existed ? "detector replaced" : "detector added");
            json(ctx, 200, JSON.createObjectNode().put("id", id).put("status", existed ? "replaced" : "added").toString());
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
        String id = java.util.UUID.randomUUID().toString().substring(0, 8);
        LOGGER.atError().addKeyValue("errorId", id).addKeyValue("path", ctx.request().path()).setCause(cause)
                .log("HTTP request failed: {}", cause.toString());
        json(ctx, 500, error("internal error " + id + " (logged under this id)"));
    }

    private CheckRequest parse(RoutingContext ctx) throws DecodeException, IOException {
        Buffer body = ctx.body().buffer();
        if (body == null || body.length() == 0) {
            throw new InvalidRequestException("empty body: send an activation record (application/octet-stream) or JSON");
        }
        String type = Optional.ofNullable(ctx.request().getHeader("Content-Type")).orElse("");
        if (type.startsWith("application/json")) {
            JsonNode j = JSON.readTree(body.getBytes());
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
