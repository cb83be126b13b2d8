package io.saeguard.sidecar.http;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.prometheus.metrics.expositionformats.ExpositionFormatWriter;
import io.prometheus.metrics.expositionformats.ExpositionFormats;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.saeguard.detectors.Chunk;
import io.saeguard.detectors.ChunkOutcome;
import io.saeguard.sae.engine.DeviceSae;
import io.saeguard.sidecar.pipeline.EngineLoop;
import io.saeguard.sidecar.pipeline.SaeRouter;
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
import java.util.function.BooleanSupplier;

/**
 * The sidecar's HTTP surface (Vert.x Web): {@code GET /health/live}, {@code GET /health/ready},
 * {@code GET /metrics} (Prometheus text, OpenMetrics or protobuf by {@code Accept}),
 * {@code POST /v1/encode} and {@code POST /v1/check}. Encoding and detection run on the engine
 * thread; handlers never block the event loop, and results come back with the engine's future
 * (completed on the engine thread, then delivered on this verticle's context).
 *
 * <p>Request body: an activation record (safetensors, {@code application/octet-stream}) or JSON
 * {@code {"request_id", "sae" | "model"+"hook", "position", "activations": [[...], ...]}}.
 * Errors are JSON {@code {"error": "..."}} with 400; a full engine queue is 503 with
 * {@code Retry-After}.
 */
public final class HttpApi extends VerticleBase {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final EventCodec CODEC = new EventCodec();
    private static final ExpositionFormats FORMATS = ExpositionFormats.init();
    /** Engine tasks queued beyond which synchronous calls are refused (the stream keeps priority). */
    static final int MAX_QUEUED = 10_000;

    private final String host;
    private final int port;
    private final BooleanSupplier ready;
    private final PrometheusRegistry registry;
    private final EngineLoop engine;
    private final SaeRouter router;
    private HttpServer server;

    public HttpApi(String host, int port, BooleanSupplier ready, PrometheusRegistry registry, EngineLoop engine,
            SaeRouter router) {
        this.host = Objects.requireNonNull(host, "host");
        this.port = port;
        this.ready = ready;
        this.registry = registry;
        this.engine = engine;
        this.router = router;
    }

    @Override
    public Future<?> start() {
        Router r = Router.router(vertx);
        r.get("/health/live").handler(ctx -> json(ctx, 200, "{\"status\":\"up\"}"));
        r.get("/health/ready").handler(ctx -> {
            boolean ok = ready.getAsBoolean();
            json(ctx, ok ? 200 : 503, ok ? "{\"status\":\"ready\"}" : "{\"status\":\"not-ready\"}");
        });
        r.get("/metrics").handler(this::metrics);
        r.post("/v1/*").handler(BodyHandler.create().setBodyLimit(32L * 1024 * 1024));
        r.post("/v1/encode").handler(ctx -> run(ctx, false));
        r.post("/v1/check").handler(ctx -> run(ctx, true));
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

    private record Request(String requestId, String sae, long position, int tokens, int dIn, float[] x, Optional<int[]> tokenIds,
            boolean isFinal) {
    }

    private void run(RoutingContext ctx, boolean check) {
        Request req;
        try {
            req = parse(ctx);
        } catch (IllegalArgumentException | DecodeException | IOException e) {
            json(ctx, 400, error(e.getMessage()));
            return;
        }
        if (engine.queued() > MAX_QUEUED) {
            ctx.response().putHeader("Retry-After", "1");
            json(ctx, 503, error("engine queue is full (" + engine.queued() + " tasks); retry shortly"));
            return;
        }
        io.vertx.core.Context vc = vertx.getOrCreateContext();
        engine.call(c -> {
            DeviceSae sae = c.sae(req.sae());
            try {
                sae.checkWidth(req.dIn());
                SparseCodes codes = sae.encode(req.sae(), req.x(), req.tokens());
                if (!check) {
                    return encodeResponse(req, codes);
                }
                float[] norms = new float[req.tokens()];
                for (int t = 0; t < req.tokens(); t++) {
                    double s = 0;
                    for (int j = t * req.dIn(); j < (t + 1) * req.dIn(); j++) {
                        s += (double) req.x()[j] * req.x()[j];
                    }
                    norms[t] = (float) Math.sqrt(s);
                }
                Chunk chunk = new Chunk(req.requestId(), req.sae(), req.position(), codes,
                        c.detectors().needsActivations(req.sae()) ? Optional.of(req.x()) : Optional.empty(), req.dIn(), norms,
                        req.tokenIds(), req.isFinal());
                return checkResponse(c.detectors().evaluate(chunk, System.currentTimeMillis()));
            } catch (io.saeguard.sae.SaeInputException e) {
                throw new IllegalArgumentException(e.getMessage(), e);
            }
        }).whenComplete((body, err) -> vc.runOnContext(v -> {
            if (err == null) {
                json(ctx, 200, body);
            } else {
                Throwable cause = err instanceof java.util.concurrent.CompletionException && err.getCause() != null ? err.getCause() : err;
                json(ctx, cause instanceof IllegalArgumentException ? 400 : 500, error(cause.getMessage()));
            }
        }));
    }

    private Request parse(RoutingContext ctx) throws DecodeException, IOException {
        Buffer body = ctx.body().buffer();
        if (body == null || body.length() == 0) {
            throw new IllegalArgumentException("empty body: send an activation record (application/octet-stream) or JSON");
        }
        String type = Optional.ofNullable(ctx.request().getHeader("Content-Type")).orElse("");
        if (type.startsWith("application/json")) {
            JsonNode j = JSON.readTree(body.getBytes());
            if (j == null || !j.isObject()) {
                throw new IllegalArgumentException("JSON body must be an object");
            }
            JsonNode acts = j.get("activations");
            if (acts == null || !acts.isArray() || acts.isEmpty() || !acts.get(0).isArray()) {
                throw new IllegalArgumentException("'activations' must be a non-empty array of arrays [tokens][d_in]");
            }
            int tokens = acts.size();
            int dIn = acts.get(0).size();
            float[] x = new float[tokens * dIn];
            for (int t = 0; t < tokens; t++) {
                JsonNode row = acts.get(t);
                if (!row.isArray() || row.size() != dIn) {
                    throw new IllegalArgumentException("activations[" + t + "] must have " + dIn + " numbers");
                }
                for (int i = 0; i < dIn; i++) {
                    if (!row.get(i).isNumber()) {
                        throw new IllegalArgumentException("activations[" + t + "][" + i + "] is not a number");
                    }
                    x[t * dIn + i] = (float) row.get(i).asDouble();
                }
            }
            String requestId = text(j, "request_id").orElse("http-" + System.nanoTime());
            Optional<String> named = text(j, "sae");
            String sae = router.route(named, text(j, "model"), text(j, "hook")).orElseThrow(() -> new IllegalArgumentException(
                    named.isPresent() ? "unknown SAE id '" + named.get() + "' (configured: " + router.ids() + ")"
                            : "give 'sae' (an SAE id) or 'model' and 'hook' that a configured SAE serves (configured: " + router.ids() + ")"));
            return validate(new Request(requestId, sae, j.path("position").asLong(0), tokens, dIn, x, Optional.empty(),
                    j.path("final").asBoolean(false)));
        }
        ActivationChunk chunk = ActivationCodec.decode(body.getBytes());
        String sae = router.route(chunk).orElseThrow(() -> new IllegalArgumentException("no configured SAE serves this record (sae "
                + chunk.sae().orElse("-") + ", model " + chunk.model().orElse("-") + ", hook " + chunk.hook().orElse("-") + ")"));
        return validate(new Request(chunk.requestId(), sae, chunk.position(), chunk.tokens(), chunk.dIn(), chunk.toFloatArray(),
                chunk.tokenIds().map(t -> t.toIntArray()), chunk.isFinal()));
    }

    private static Request validate(Request r) {
        for (int i = 0; i < r.x().length; i++) {
            if (!Float.isFinite(r.x()[i])) {
                throw new IllegalArgumentException("token " + (i / r.dIn()) + " has a non-finite value at dimension " + (i % r.dIn()));
            }
        }
        return r;
    }

    private static Optional<String> text(JsonNode j, String key) {
        JsonNode n = j.get(key);
        return n == null || !n.isTextual() || n.textValue().isEmpty() ? Optional.empty() : Optional.of(n.textValue());
    }

    private static String encodeResponse(Request req, SparseCodes codes) {
        ObjectNode o = JSON.createObjectNode();
        o.put("sae", req.sae());
        o.put("d_sae", codes.dSae());
        ArrayNode tokens = o.putArray("tokens");
        for (int t = 0; t < codes.tokens(); t++) {
            ObjectNode tok = tokens.addObject();
            tok.put("position", req.position() + t);
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
        return sb.append("]}").toString();
    }

    private static String error(String message) {
        return JSON.createObjectNode().put("error", String.valueOf(message)).toString();
    }

    private static void json(RoutingContext ctx, int status, String body) {
        ctx.response().setStatusCode(status).putHeader("Content-Type", "application/json").end(body);
    }
}
