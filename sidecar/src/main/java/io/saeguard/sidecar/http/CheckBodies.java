package io.saeguard.sidecar.http;

import static io.saeguard.sidecar.http.Replies.body;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.saeguard.detectors.ChunkOutcome;
import io.saeguard.sidecar.pipeline.CheckRequest;
import io.saeguard.sidecar.pipeline.CheckResult;
import io.saeguard.sidecar.pipeline.InvalidRequestException;
import io.saeguard.sidecar.pipeline.SaeRouter;
import io.saeguard.sidecar.pipeline.SpecialMask;
import io.saeguard.topics.DecodeException;
import io.saeguard.topics.activation.ActivationChunk;
import io.saeguard.topics.activation.ActivationCodec;
import io.saeguard.topics.codes.SparseCodes;
import io.saeguard.topics.events.Alert;
import io.saeguard.topics.events.EventCodec;
import io.vertx.core.buffer.Buffer;
import io.vertx.ext.web.RoutingContext;
import java.io.IOException;
import java.util.Optional;

/**
 * The bodies of {@code POST /v1/check} and {@code /v1/encode}: an activation record (safetensors,
 * {@code application/octet-stream}), JSON activations, or JSON text for the prompt model, parsed into a
 * {@link CheckRequest} (routed to its SAE); and the JSON answers. Stateless; used on the event loop.
 */
final class CheckBodies {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final EventCodec CODEC = new EventCodec();

    private final SaeRouter router;
    private final Optional<String> promptSae;

    /** @param promptSae the SAE that serves the prompt model's hidden states, when the sidecar has one */
    CheckBodies(SaeRouter router, Optional<String> promptSae) {
        this.router = router;
        this.promptSae = promptSae;
    }

    CheckRequest parse(RoutingContext ctx) throws DecodeException, IOException {
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

    static Optional<String> text(JsonNode j, String key) {
        JsonNode n = j.get(key);
        return n == null || !n.isTextual() || n.textValue().isEmpty() ? Optional.empty() : Optional.of(n.textValue());
    }

    static String encodeResponse(CheckResult result) {
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

    static String checkResponse(ChunkOutcome outcome) {
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
}
