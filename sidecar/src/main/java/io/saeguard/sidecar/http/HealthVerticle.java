package io.saeguard.sidecar.http;

import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.http.HttpServer;
import io.vertx.ext.web.Router;
import java.util.Objects;
import java.util.function.BooleanSupplier;

/**
 * The sidecar's HTTP surface: {@code GET /health/live} (the process serves requests) and
 * {@code GET /health/ready} (the readiness condition given at construction holds).
 * The condition is evaluated on the event loop, so it must be a cheap read of state kept elsewhere.
 */
public final class HealthVerticle extends VerticleBase {
    private final String host;
    private final int port;
    private final BooleanSupplier ready;
    private HttpServer server;

    public HealthVerticle(String host, int port, BooleanSupplier ready) {
        this.host = Objects.requireNonNull(host, "host");
        this.port = port;
        this.ready = Objects.requireNonNull(ready, "ready");
    }

    @Override
    public Future<?> start() {
        Router router = Router.router(vertx);
        router.get("/health/live").handler(ctx -> ctx.response()
                .putHeader("content-type", "application/json").end("{\"status\":\"up\"}"));
        router.get("/health/ready").handler(ctx -> {
            boolean ok = ready.getAsBoolean();
            ctx.response().setStatusCode(ok ? 200 : 503).putHeader("content-type", "application/json")
                    .end(ok ? "{\"status\":\"ready\"}" : "{\"status\":\"not-ready\"}");
        });
        return vertx.createHttpServer().requestHandler(router).listen(port, host).onSuccess(s -> server = s);
    }

    /** The bound port (useful when 0 was asked for). */
    public int actualPort() {
        return server.actualPort();
    }
}
