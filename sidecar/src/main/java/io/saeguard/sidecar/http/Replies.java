package io.saeguard.sidecar.http;

import io.vertx.core.buffer.Buffer;
import io.vertx.ext.web.RoutingContext;

/**
 * How the HTTP API reads bodies and answers: bodies as bytes up to an endpoint's limit (never parsed as forms; over the
 * limit is a 413 the client gets to read), JSON answers and errors ({@code {"error": "..."}}), and paths checked for
 * malformed escapes before the router sees them.
 */
final class Replies {
    private static final com.fasterxml.jackson.databind.ObjectMapper JSON = new com.fasterxml.jackson.databind.ObjectMapper();
    /** Bytes of a refused body read and discarded before the connection is closed instead. */
    static final long DRAIN_LIMIT = 64L * 1024 * 1024;
    /** Routing-context key of the body {@link #bodyLimit} read. */
    static final String BODY = "saeguard.body";

    private Replies() {
    }

    /**
     * Reads the body, as bytes, up to {@code limit} bytes (never as a form: a form or multipart content type is just
     * bytes here). A declared {@code Content-Length} over the limit is refused at once (413), without buffering it; a
     * chunked body that grows past it is refused when it does. The handlers find the body under {@link #BODY}.
     */
    static io.vertx.core.Handler<RoutingContext> bodyLimit(long limit) {
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

    /**
     * Answers a 4xx. When the request's body is still arriving, it is read and thrown away (up to {@link #DRAIN_LIMIT}
     * bytes) so the client sees the answer rather than a connection reset while it is still sending.
     */
    static void refuse(RoutingContext ctx, int status, String body) {
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

    /** The body {@link #bodyLimit} read (empty when there was none). */
    static Buffer body(RoutingContext ctx) {
        Buffer b = ctx.get(BODY);
        return b != null ? b : Buffer.buffer();
    }

    static String error(String message) {
        return JSON.createObjectNode().put("error", String.valueOf(message)).toString();
    }

    static void json(RoutingContext ctx, int status, String body) {
        ctx.response().setStatusCode(status).putHeader("Content-Type", "application/json").end(body);
    }
}
