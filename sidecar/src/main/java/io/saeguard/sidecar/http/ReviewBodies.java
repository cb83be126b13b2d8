package io.saeguard.sidecar.http;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.saeguard.sidecar.pipeline.InvalidRequestException;
import io.saeguard.sidecar.review.AlertLog;
import io.saeguard.topics.events.EventCodec;
import io.saeguard.topics.events.Review;
import io.saeguard.topics.events.Verdict;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The review API's bodies: the {@code POST /v1/alerts/{request_id}/{seq}/review} request ({@code {"verdict", "note"?}},
 * strict: unknown fields, a wrong type or a note over {@value Review#MAX_NOTE_CHARS} characters are a 400) and the JSON of
 * reviews and of alerts with their review. A note is text in JSON, never HTML: what a reviewer wrote comes back verbatim
 * as a JSON string, and the page must insert it as text.
 */
final class ReviewBodies {
    private static final JsonMapper JSON = JsonMapper.builder().enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build();
    private static final EventCodec CODEC = new EventCodec();
    private static final Set<String> FIELDS = Set.of("verdict", "note", "detector");
    private static final Pattern SEQ = Pattern.compile("[0-9]{1,18}");

    /**
     * What a reviewer sent: a verdict, an optional note, and optionally which detector's alert it is (needed only where
     * several detectors alerted on the same request and seq).
     */
    record ReviewRequest(Verdict verdict, Optional<String> note, Optional<String> detector) {
    }

    private ReviewBodies() {
    }

    /** The path's {@code seq}: a decimal integer {@code >= 0}. */
    static long seq(String text) {
        if (!SEQ.matcher(text).matches()) {
            throw new InvalidRequestException("the alert's seq '" + text + "' is not a decimal integer >= 0 (the alert id is <request_id>/<seq>)");
        }
        return Long.parseLong(text);
    }

    /** Longest request id a path may name: the ids the LLM server makes are short; this bounds a lookup's key. */
    static final int MAX_REQUEST_ID_CHARS = 1000;

    /** The path's {@code request_id}: non-empty, at most {@value #MAX_REQUEST_ID_CHARS} characters, no control characters. */
    static String requestId(String text) {
        if (text == null || text.isEmpty()) {
            throw new InvalidRequestException("the request id is empty: name one, percent-encoded, as /v1/requests/<request_id>/decisions");
        }
        if (text.length() > MAX_REQUEST_ID_CHARS) {
            throw new InvalidRequestException("the request id has " + text.length() + " characters; request ids are at most "
                    + MAX_REQUEST_ID_CHARS);
        }
        if (text.chars().anyMatch(Character::isISOControl)) {
            throw new InvalidRequestException("the request id holds a control character: no request id does; check its percent-encoding");
        }
        return text;
    }

    /** {@code {"request_id", "decisions": [decision JSON as on the topic...], "scanned", "complete"}}. */
    static String decisions(io.saeguard.sidecar.review.RequestDecisions.Lookup lookup) {
        ObjectNode root = JSON.createObjectNode().put("request_id", lookup.requestId());
        var list = root.putArray("decisions");
        for (String d : lookup.decisions()) {
            list.add(tree(d));
        }
        return root.put("scanned", lookup.scanned()).put("complete", lookup.complete()).toString();
    }

    /** Reads a review request body. */
    static ReviewRequest parse(byte[] body) {
        JsonNode root;
        try {
            root = JSON.readTree(body);
        } catch (java.io.IOException e) {
            throw new InvalidRequestException("the body is not JSON: send {\"verdict\": \"" + Verdict.wireNames().replace("|", "\" | \"")
                    + "\", \"note\": \"...\"}", e);
        }
        if (root == null || !root.isObject()) {
            throw new InvalidRequestException("the body must be a JSON object {\"verdict\": ..., \"note\": ...}");
        }
        for (Map.Entry<String, JsonNode> field : root.properties()) {
            if (!FIELDS.contains(field.getKey())) {
                throw new InvalidRequestException("unknown field '" + field.getKey() + "': a review has only 'verdict', 'note' and 'detector'");
            }
        }
        JsonNode v = root.get("verdict");
        if (v == null || !v.isTextual()) {
            throw new InvalidRequestException("'verdict' is missing or not a string: give one of " + Verdict.wireNames());
        }
        Verdict verdict = Verdict.fromWireName(v.textValue()).orElseThrow(() -> new InvalidRequestException("unknown verdict '"
                + v.textValue() + "': give one of " + Verdict.wireNames()));
        JsonNode n = root.get("note");
        Optional<String> note = Optional.empty();
        if (n != null && !n.isNull()) {
            if (!n.isTextual()) {
                throw new InvalidRequestException("'note' must be a string");
            }
            if (n.textValue().length() > Review.MAX_NOTE_CHARS) {
                throw new InvalidRequestException("'note' has " + n.textValue().length() + " characters; at most " + Review.MAX_NOTE_CHARS
                        + " are kept: shorten it");
            }
            note = n.textValue().isEmpty() ? Optional.empty() : Optional.of(n.textValue());
        }
        JsonNode d = root.get("detector");
        Optional<String> detector = Optional.empty();
        if (d != null && !d.isNull()) {
            if (!d.isTextual() || d.textValue().isEmpty()) {
                throw new InvalidRequestException("'detector' must be a non-empty string: the id of the detector whose alert this is");
            }
            detector = Optional.of(d.textValue());
        }
        return new ReviewRequest(verdict, note, detector);
    }

    /** A review as JSON: review.schema.json's fields. */
    static String review(Review review) {
        return new String(CODEC.encode(review), StandardCharsets.UTF_8);
    }

    /** {@code {"reviews": [...]}}. */
    static String reviews(Iterable<Review> reviews) {
        ObjectNode root = JSON.createObjectNode();
        var list = root.putArray("reviews");
        for (Review r : reviews) {
            list.add(tree(review(r)));
        }
        return root.toString();
    }

    /** An alert's JSON as on the topic, with {@code "review"} when it was reviewed. */
    static ObjectNode alert(AlertLog.Entry alert, Optional<Review> review) {
        ObjectNode node = (ObjectNode) tree(alert.json());
        review.ifPresent(r -> node.set("review", tree(review(r))));
        return node;
    }

    private static JsonNode tree(String json) {
        try {
            return JSON.readTree(json);
        } catch (JacksonException e) {
            throw new IllegalStateException("JSON this sidecar holds no longer parses: " + e.getOriginalMessage(), e);
        }
    }
}
