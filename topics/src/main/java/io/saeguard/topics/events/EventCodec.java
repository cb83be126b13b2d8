package io.saeguard.topics.events;

import com.fasterxml.jackson.core.JsonEncoding;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.json.JsonWriteFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import io.saeguard.topics.DecodeException;
import io.saeguard.topics.DecodeException.Reason;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalInt;
import java.util.OptionalLong;
import java.util.Set;

/**
 * Encodes and decodes the JSON events of the wire contract: {@link PromptEvent} ({@code saeguard.prompts}),
 * {@link Decision} ({@code saeguard.decisions}), {@link Alert} ({@code saeguard.alerts}), {@link ShadowDecision}
 * ({@code saeguard.shadow}), {@link JudgeRequest} ({@code saeguard.judge}), {@link JudgeVerdict}
 * ({@code saeguard.judge-verdicts}) and {@link Review} ({@code saeguard.reviews}). The JSON
 * Schemas in {@code topics/schemas/} (also on the classpath under {@code io/saeguard/topics/schemas/})
 * are the source of truth; this codec writes exactly what they allow and reads exactly what they
 * accept.
 *
 * <p>Encoding writes UTF-8 JSON with the schemas' snake_case field names and omits absent optional
 * fields (a decision's {@code features} is always written, possibly empty). Decoding rejects invalid
 * JSON, duplicate keys, unknown fields, missing required fields and out-of-range or unknown values with
 * a {@link DecodeException} whose message names the event, the field and what was expected, e.g.
 * {@code decision: field "action" must be one of allow|flag|steer|clamp|block, found "stop"}. Optional
 * fields are omitted on the wire, never {@code null}.
 *
 * <p>Thread-safe and stateless: one instance can serve every thread.
 */
public final class EventCodec {
    // One mapper, configured once; Jackson mappers are thread-safe after configuration.
    private static final JsonMapper MAPPER = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            // Emoji and other non-BMP characters as 4-byte UTF-8 rather than as escaped surrogate pairs.
            .enable(JsonWriteFeature.COMBINE_UNICODE_SURROGATES_IN_UTF8)
            .build();

    private static final String REQUEST_ID = "request_id";
    private static final String MODEL = "model";
    private static final String TEXT = "text";
    private static final String ROLE = "role";
    private static final String TS = "ts";
    private static final String TENANT = "tenant";
    private static final String PHASE = "phase";
    private static final String SEQ = "seq";
    private static final String ACTION = "action";
    private static final String DETECTOR = "detector";
    private static final String TIER = "tier";
    private static final String SCORE = "score";
    private static final String POSITION = "position";
    private static final String FEATURES = "features";
    private static final String VECTOR = "vector";
    private static final String REASON = "reason";
    private static final String LATENCY_MS = "latency_ms";
    private static final String SAE = "sae";
    private static final String ID = "id";
    private static final String VALUE = "value";
    private static final String COEFFICIENT = "coefficient";
    private static final String LABEL = "label";
    private static final String EXPLANATION = "explanation";
    private static final String HOOK = "hook";
    private static final String POSITIONS = "positions";
    private static final String EXCERPT = "excerpt";
    private static final String EXCERPT_HIGHLIGHTS = "excerpt_highlights";
    private static final String START = "start";
    private static final String END = "end";
    private static final String SHADOW = "shadow";
    private static final String REPLY_PARTITION = "reply_partition";
    private static final String JUDGE_TIMEOUT_MS = "judge_timeout_ms";
    private static final String FALLBACK = "fallback";
    private static final String JUDGE = "judge";
    private static final String ALERT_ID = "alert_id";
    private static final String VERDICT = "verdict";
    private static final String REVIEWER = "reviewer";
    private static final String NOTE = "note";
    private static final String TIME = "time";

    private static final Set<String> PROMPT_FIELDS = fields(REQUEST_ID, MODEL, TEXT, ROLE, TS, TENANT, PHASE, REPLY_PARTITION);
    private static final Set<String> DECISION_FIELDS = fields(
            REQUEST_ID, SEQ, ACTION, DETECTOR, TIER, SCORE, POSITION, FEATURES, VECTOR, REASON, LATENCY_MS, TS);
    private static final Set<String> ALERT_FIELDS = fields(
            REQUEST_ID, SEQ, ACTION, DETECTOR, TIER, SCORE, POSITION, FEATURES, VECTOR, REASON, LATENCY_MS, TS,
            MODEL, HOOK, SAE, POSITIONS, EXCERPT, EXCERPT_HIGHLIGHTS);
    private static final Set<String> SHADOW_FIELDS = fields(
            REQUEST_ID, SEQ, ACTION, DETECTOR, TIER, SCORE, POSITION, FEATURES, VECTOR, REASON, LATENCY_MS, TS, SHADOW);
    private static final Set<String> JUDGE_REQUEST_FIELDS = fields(
            REQUEST_ID, SEQ, DETECTOR, SCORE, POSITION, FEATURES, EXCERPT, JUDGE_TIMEOUT_MS, FALLBACK, TS);
    private static final Set<String> JUDGE_VERDICT_FIELDS = fields(REQUEST_ID, DETECTOR, ACTION, REASON, JUDGE, TS);
    private static final Set<String> REVIEW_FIELDS = fields(ALERT_ID, REQUEST_ID, SEQ, VERDICT, DETECTOR, REVIEWER, NOTE, TIME);
    private static final Set<String> FEATURE_FIELDS = fields(SAE, ID, VALUE);
    private static final Set<String> ALERT_FEATURE_FIELDS = fields(SAE, ID, VALUE, LABEL, EXPLANATION);
    private static final Set<String> VECTOR_FIELDS = fields(ID, COEFFICIENT, VALUE);
    private static final Set<String> SPAN_FIELDS = fields(START, END);

    /** UTF-8 JSON of a prompt event, valid against {@code prompt.schema.json}. */
    public byte[] encode(PromptEvent event) {
        Objects.requireNonNull(event, "event");
        return write(g -> {
            g.writeStartObject();
            g.writeStringField(REQUEST_ID, event.requestId());
            writeOptional(g, MODEL, event.model());
            g.writeStringField(TEXT, event.text());
            g.writeStringField(ROLE, event.role().wireName());
            g.writeNumberField(TS, event.ts());
            writeOptional(g, TENANT, event.tenant());
            if (event.phase().isPresent()) {
                g.writeStringField(PHASE, event.phase().get().wireName());
            }
            if (event.replyPartition().isPresent()) {
                g.writeNumberField(REPLY_PARTITION, event.replyPartition().getAsInt());
            }
            g.writeEndObject();
        });
    }

    /** UTF-8 JSON of a decision, valid against {@code decision.schema.json}. */
    public byte[] encode(Decision decision) {
        Objects.requireNonNull(decision, "decision");
        return write(g -> {
            g.writeStartObject();
            writeDecisionFields(g, decision, () -> {
                for (FeatureRef feature : decision.features()) {
                    g.writeStartObject();
                    writeFeatureFields(g, feature);
                    g.writeEndObject();
                }
            });
            g.writeEndObject();
        });
    }

    /** UTF-8 JSON of a request for judgement, valid against {@code judge-request.schema.json}. */
    public byte[] encode(JudgeRequest request) {
        Objects.requireNonNull(request, "request");
        return write(g -> {
            g.writeStartObject();
            g.writeStringField(REQUEST_ID, request.requestId());
            g.writeNumberField(SEQ, request.seq());
            g.writeStringField(DETECTOR, request.detector());
            writeOptional(g, SCORE, request.score());
            g.writeNumberField(POSITION, request.position());
            g.writeArrayFieldStart(FEATURES);
            for (FeatureRef feature : request.features()) {
                g.writeStartObject();
                writeFeatureFields(g, feature);
                g.writeEndObject();
            }
            g.writeEndArray();
            writeOptional(g, EXCERPT, request.excerpt());
            g.writeNumberField(JUDGE_TIMEOUT_MS, request.timeoutMs());
            g.writeStringField(FALLBACK, request.fallback().wireName());
            g.writeNumberField(TS, request.ts());
            g.writeEndObject();
        });
    }

    /** UTF-8 JSON of a judge's verdict, valid against {@code judge-verdict.schema.json}. */
    public byte[] encode(JudgeVerdict verdict) {
        Objects.requireNonNull(verdict, "verdict");
        return write(g -> {
            g.writeStartObject();
            g.writeStringField(REQUEST_ID, verdict.requestId());
            g.writeStringField(DETECTOR, verdict.detector());
            g.writeStringField(ACTION, verdict.action().wireName());
            g.writeStringField(REASON, verdict.reason());
            writeOptional(g, JUDGE, verdict.judge());
            if (verdict.ts().isPresent()) {
                g.writeNumberField(TS, verdict.ts().getAsLong());
            }
            g.writeEndObject();
        });
    }

    /**
     * Reads a request for judgement; an absent {@code features} reads as empty.
     *
     * @throws DecodeException if {@code json} is not a valid judge request
     */
    public JudgeRequest decodeJudgeRequest(byte[] json) throws DecodeException {
        String event = "judge request";
        JsonObjectReader r = JsonObjectReader.root(event, parse(event, json), JUDGE_REQUEST_FIELDS);
        List<FeatureRef> features = r.optionalArray(FEATURES, (element, path) ->
                readFeature(r.nested(element, path, FEATURE_FIELDS)));
        String requestId = r.requiredString(REQUEST_ID, true);
        long seq = r.requiredLong(SEQ);
        String detector = r.requiredString(DETECTOR, true);
        OptionalDouble score = r.optionalDouble(SCORE, false);
        long position = r.requiredLong(POSITION);
        Optional<String> excerpt = r.optionalString(EXCERPT, false);
        long timeout = r.requiredLong(JUDGE_TIMEOUT_MS);
        Action fallback = r.requiredEnum(FALLBACK, Action::fromWireName, Action.wireNames());
        long ts = r.requiredLong(TS);
        return construct(event, () -> new JudgeRequest(requestId, seq, detector, score, position, features, excerpt, timeout, fallback, ts));
    }

    /**
     * Reads a judge's verdict. Its action must be allow, flag or block.
     *
     * @throws DecodeException if {@code json} is not a valid judge verdict
     */
    public JudgeVerdict decodeJudgeVerdict(byte[] json) throws DecodeException {
        String event = "judge verdict";
        JsonObjectReader r = JsonObjectReader.root(event, parse(event, json), JUDGE_VERDICT_FIELDS);
        String requestId = r.requiredString(REQUEST_ID, true);
        String detector = r.requiredString(DETECTOR, true);
        Action action = r.requiredEnum(ACTION, a -> Action.fromWireName(a).filter(JudgeVerdict::allowed), "allow|flag|block");
        String reason = r.requiredString(REASON, false);
        Optional<String> judge = r.optionalString(JUDGE, true);
        OptionalLong ts = r.optionalLong(TS);
        return construct(event, () -> new JudgeVerdict(requestId, detector, action, reason, judge, ts));
    }

    /** UTF-8 JSON of a shadow decision, valid against {@code shadow.schema.json}: the decision's fields plus {@code "shadow": true}. */
    public byte[] encode(ShadowDecision shadow) {
        Objects.requireNonNull(shadow, "shadow");
        Decision decision = shadow.decision();
        return write(g -> {
            g.writeStartObject();
            writeDecisionFields(g, decision, () -> {
                for (FeatureRef feature : decision.features()) {
                    g.writeStartObject();
                    writeFeatureFields(g, feature);
                    g.writeEndObject();
                }
            });
            g.writeBooleanField(SHADOW, true);
            g.writeEndObject();
        });
    }

    /** UTF-8 JSON of an alert, valid against {@code alert.schema.json}. */
    public byte[] encode(Alert alert) {
        Objects.requireNonNull(alert, "alert");
        return write(g -> {
            g.writeStartObject();
            writeDecisionFields(g, alert.decision(), () -> {
                for (AlertFeature feature : alert.features()) {
                    g.writeStartObject();
                    writeFeatureFields(g, feature.ref());
                    writeOptional(g, LABEL, feature.label());
                    writeOptional(g, EXPLANATION, feature.explanation());
                    g.writeEndObject();
                }
            });
            writeOptional(g, MODEL, alert.model());
            writeOptional(g, HOOK, alert.hook());
            writeOptional(g, SAE, alert.sae());
            g.writeArrayFieldStart(POSITIONS);
            for (long position : alert.positions()) {
                g.writeNumber(position);
            }
            g.writeEndArray();
            writeOptional(g, EXCERPT, alert.excerpt());
            if (!alert.highlights().isEmpty()) {
                g.writeArrayFieldStart(EXCERPT_HIGHLIGHTS);
                for (ExcerptSpan h : alert.highlights()) {
                    g.writeStartObject();
                    g.writeNumberField(START, h.start());
                    g.writeNumberField(END, h.end());
                    g.writeEndObject();
                }
                g.writeEndArray();
            }
            g.writeEndObject();
        });
    }

    /** UTF-8 JSON of a review, valid against {@code review.schema.json}. */
    public byte[] encode(Review review) {
        Objects.requireNonNull(review, "review");
        return write(g -> {
            g.writeStartObject();
            g.writeStringField(ALERT_ID, review.alertId());
            g.writeStringField(REQUEST_ID, review.requestId());
            g.writeNumberField(SEQ, review.seq());
            g.writeStringField(VERDICT, review.verdict().wireName());
            g.writeStringField(DETECTOR, review.detector());
            g.writeStringField(REVIEWER, review.reviewer());
            writeOptional(g, NOTE, review.note());
            g.writeNumberField(TIME, review.time());
            g.writeEndObject();
        });
    }

    /**
     * Reads a prompt event; an absent {@code role} reads as {@link Role#USER}.
     *
     * @throws DecodeException if {@code json} is not a valid prompt event
     */
    public PromptEvent decodePrompt(byte[] json) throws DecodeException {
        String event = "prompt";
        JsonObjectReader r = JsonObjectReader.root(event, parse(event, json), PROMPT_FIELDS);
        String requestId = r.requiredString(REQUEST_ID, true);
        Optional<String> model = r.optionalString(MODEL, true);
        String text = r.requiredString(TEXT, false);
        Role role = r.optionalEnum(ROLE, Role::fromWireName, Role.wireNames()).orElse(Role.USER);
        long ts = r.requiredLong(TS);
        Optional<String> tenant = r.optionalString(TENANT, true);
        Optional<Phase> phase = r.optionalEnum(PHASE, Phase::fromWireName, Phase.wireNames());
        OptionalInt replyPartition = r.optionalInt(REPLY_PARTITION);
        return construct(event, () -> new PromptEvent(requestId, model, text, role, ts, tenant, phase, replyPartition));
    }

    /**
     * Reads a decision; an absent {@code features} reads as empty.
     *
     * @throws DecodeException if {@code json} is not a valid decision
     */
    public Decision decodeDecision(byte[] json) throws DecodeException {
        String event = "decision";
        JsonObjectReader r = JsonObjectReader.root(event, parse(event, json), DECISION_FIELDS);
        List<FeatureRef> features = r.optionalArray(FEATURES, (element, path) ->
                readFeature(r.nested(element, path, FEATURE_FIELDS)));
        return construct(event, () -> readDecision(r, features, false));
    }

    /**
     * Reads a shadow decision; {@code detector} and {@code "shadow": true} are required, an absent {@code features}
     * reads as empty.
     *
     * @throws DecodeException if {@code json} is not a valid shadow decision
     */
    public ShadowDecision decodeShadow(byte[] json) throws DecodeException {
        String event = "shadow";
        JsonObjectReader r = JsonObjectReader.root(event, parse(event, json), SHADOW_FIELDS);
        List<FeatureRef> features = r.optionalArray(FEATURES, (element, path) ->
                readFeature(r.nested(element, path, FEATURE_FIELDS)));
        r.requiredTrue(SHADOW);
        r.requiredString(DETECTOR, true);
        Decision decision = construct(event, () -> readDecision(r, features, false));
        return construct(event, () -> new ShadowDecision(decision));
    }

    /**
     * Reads an alert; {@code detector} and {@code score} are required, an absent {@code features} or
     * {@code positions} reads as empty.
     *
     * @throws DecodeException if {@code json} is not a valid alert
     */
    public Alert decodeAlert(byte[] json) throws DecodeException {
        String event = "alert";
        JsonObjectReader r = JsonObjectReader.root(event, parse(event, json), ALERT_FIELDS);
        List<AlertFeature> features = r.optionalArray(FEATURES, (element, path) -> {
            JsonObjectReader f = r.nested(element, path, ALERT_FEATURE_FIELDS);
            return new AlertFeature(readFeature(f), f.optionalString(LABEL, false), f.optionalString(EXPLANATION, false));
        });
        List<FeatureRef> refs = features.stream().map(AlertFeature::ref).toList();
        Decision decision = construct(event, () -> readDecision(r, refs, true));
        Optional<String> model = r.optionalString(MODEL, true);
        Optional<String> hook = r.optionalString(HOOK, true);
        Optional<String> sae = r.optionalString(SAE, true);
        List<Long> positions = r.optionalArray(POSITIONS, r::nonNegativeLong);
        Optional<String> excerpt = r.optionalString(EXCERPT, false);
        List<ExcerptSpan> highlights = r.optionalArray(EXCERPT_HIGHLIGHTS, (element, path) -> {
            JsonObjectReader h = r.nested(element, path, SPAN_FIELDS);
            int start = h.requiredInt(START);
            int end = h.requiredInt(END);
            return construct(event, () -> new ExcerptSpan(start, end));
        });
        return construct(event, () -> new Alert(decision, features, positions, excerpt, highlights, hook, model, sae));
    }

    /**
     * Reads a review; {@code alert_id} must be {@code <request_id>/<seq>} of the record's own fields.
     *
     * @throws DecodeException if {@code json} is not a valid review
     */
    public Review decodeReview(byte[] json) throws DecodeException {
        String event = "review";
        JsonObjectReader r = JsonObjectReader.root(event, parse(event, json), REVIEW_FIELDS);
        String alertId = r.requiredString(ALERT_ID, true);
        String requestId = r.requiredString(REQUEST_ID, true);
        long seq = r.requiredLong(SEQ);
        Verdict verdict = r.requiredEnum(VERDICT, Verdict::fromWireName, Verdict.wireNames());
        String detector = r.requiredString(DETECTOR, true);
        String reviewer = r.requiredString(REVIEWER, true);
        Optional<String> note = r.optionalString(NOTE, false);
        long time = r.requiredLong(TIME);
        Review review = construct(event, () -> new Review(requestId, seq, verdict, detector, reviewer, note, time));
        if (!review.alertId().equals(alertId)) {
            throw new DecodeException(Reason.INVALID_VALUE, event + ": field \"alert_id\" must be \"<request_id>/<seq>\" of this review, "
                    + "expected \"" + review.alertId() + "\"");
        }
        return review;
    }

    /** The decision fields of a decision or an alert; an alert requires {@code detector} and {@code score}. */
    private static Decision readDecision(JsonObjectReader r, List<FeatureRef> features, boolean alert)
            throws DecodeException {
        return new Decision(
                r.requiredString(REQUEST_ID, true),
                r.requiredLong(SEQ),
                r.requiredEnum(ACTION, Action::fromWireName, Action.wireNames()),
                alert ? Optional.of(r.requiredString(DETECTOR, true)) : r.optionalString(DETECTOR, true),
                r.optionalEnum(TIER, Tier::fromWireName, Tier.wireNames()),
                alert ? OptionalDouble.of(r.requiredDouble(SCORE)) : r.optionalDouble(SCORE, false),
                r.requiredLong(POSITION),
                features,
                r.optionalObject(VECTOR, (value, path) -> readVector(r.nested(value, path, VECTOR_FIELDS))),
                r.optionalString(REASON, false),
                r.optionalDouble(LATENCY_MS, true),
                r.optionalLong(TS));
    }

    private static FeatureRef readFeature(JsonObjectReader f) throws DecodeException {
        return new FeatureRef(f.requiredString(SAE, true), f.requiredInt(ID), f.requiredDouble(VALUE));
    }

    private static VectorRef readVector(JsonObjectReader v) throws DecodeException {
        return new VectorRef(v.requiredString(ID, true), v.requiredDouble(COEFFICIENT), v.optionalDouble(VALUE, false));
    }

    /** Writes the fields shared by decisions and alerts, in schema order; {@code features} writes the array's elements. */
    private static void writeDecisionFields(JsonGenerator g, Decision d, IoAction features) throws IOException {
        g.writeStringField(REQUEST_ID, d.requestId());
        g.writeNumberField(SEQ, d.seq());
        g.writeStringField(ACTION, d.action().wireName());
        writeOptional(g, DETECTOR, d.detector());
        if (d.tier().isPresent()) {
            g.writeStringField(TIER, d.tier().get().wireName());
        }
        writeOptional(g, SCORE, d.score());
        g.writeNumberField(POSITION, d.position());
        g.writeArrayFieldStart(FEATURES);
        features.run();
        g.writeEndArray();
        if (d.vector().isPresent()) {
            VectorRef v = d.vector().get();
            g.writeObjectFieldStart(VECTOR);
            g.writeStringField(ID, v.id());
            g.writeNumberField(COEFFICIENT, v.coefficient());
            writeOptional(g, VALUE, v.value());
            g.writeEndObject();
        }
        writeOptional(g, REASON, d.reason());
        writeOptional(g, LATENCY_MS, d.latencyMs());
        if (d.ts().isPresent()) {
            g.writeNumberField(TS, d.ts().getAsLong());
        }
    }

    private static void writeFeatureFields(JsonGenerator g, FeatureRef feature) throws IOException {
        g.writeStringField(SAE, feature.sae());
        g.writeNumberField(ID, feature.id());
        g.writeNumberField(VALUE, feature.value());
    }

    private static void writeOptional(JsonGenerator g, String field, Optional<String> value) throws IOException {
        if (value.isPresent()) {
            g.writeStringField(field, value.get());
        }
    }

    private static void writeOptional(JsonGenerator g, String field, OptionalDouble value) throws IOException {
        if (value.isPresent()) {
            g.writeNumberField(field, value.getAsDouble());
        }
    }

    @FunctionalInterface
    private interface IoAction {
        void run() throws IOException;
    }

    @FunctionalInterface
    private interface JsonWriter {
        void write(JsonGenerator g) throws IOException;
    }

    private static byte[] write(JsonWriter writer) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(256);
        try (JsonGenerator g = MAPPER.getFactory().createGenerator(out, JsonEncoding.UTF8)) {
            writer.write(g);
        } catch (IOException e) {
            // Only a bug can get here: the target is an in-memory stream and the records are validated.
            throw new UncheckedIOException("encoding an event to JSON failed", e);
        }
        return out.toByteArray();
    }

    private static JsonNode parse(String event, byte[] json) throws DecodeException {
        Objects.requireNonNull(json, "json");
        JsonNode node;
        try {
            node = MAPPER.readTree(json);
        } catch (JsonProcessingException e) {
            JsonLocation at = e.getLocation();
            String where = at == null ? "" : " at byte offset " + at.getByteOffset();
            throw new DecodeException(
                    Reason.MALFORMED_HEADER, event + ": not valid JSON" + where + ": " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new UncheckedIOException("reading JSON from a byte array failed", e);
        }
        if (node == null || node.isMissingNode()) {
            throw new DecodeException(Reason.MALFORMED_HEADER, event + ": empty record, expected a JSON object");
        }
        return node;
    }

    @FunctionalInterface
    private interface Construction<T> {
        T get() throws DecodeException;
    }

    /**
     * The reader applies every schema rule first, so a record constructor rejecting the values is a
     * disagreement between the codec and the records; report it as a decode error rather than crash.
     */
    private static <T> T construct(String event, Construction<T> construction) throws DecodeException {
        try {
            return construction.get();
        } catch (IllegalArgumentException | NullPointerException e) {
            throw new DecodeException(Reason.INVALID_VALUE, event + ": " + e.getMessage(), e);
        }
    }

    private static Set<String> fields(String... names) {
        return Collections.unmodifiableSet(new LinkedHashSet<>(List.of(names)));
    }
}
