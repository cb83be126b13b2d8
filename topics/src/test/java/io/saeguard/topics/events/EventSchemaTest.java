package io.saeguard.topics.events;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.networknt.schema.JsonSchema;
import com.networknt.schema.JsonSchemaFactory;
import com.networknt.schema.SchemaId;
import com.networknt.schema.SchemaLocation;
import com.networknt.schema.SpecVersion;
import com.networknt.schema.ValidationMessage;
import io.saeguard.topics.DecodeException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The JSON Schemas in {@code topics/schemas/} are the source of truth: what {@link EventCodec} writes
 * must validate against them, and what they reject the codec must reject too.
 */
class EventSchemaTest {
    private static final String SCHEMA_DIR = "io/saeguard/topics/schemas/";
    private static final JsonSchemaFactory FACTORY = JsonSchemaFactory.getInstance(SpecVersion.VersionFlag.V202012);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final JsonSchema PROMPT = schema("prompt");
    private static final JsonSchema DECISION = schema("decision");
    private static final JsonSchema ALERT = schema("alert");
    private static final JsonSchema SHADOW = schema("shadow");
    private static final JsonSchema REVIEW = schema("review");

    private final EventCodec codec = new EventCodec();

    private static JsonSchema schema(String name) {
        return FACTORY.getSchema(SchemaLocation.of("classpath:" + SCHEMA_DIR + name + ".schema.json"));
    }

    private static Set<ValidationMessage> validate(JsonSchema schema, byte[] json) throws Exception {
        return schema.validate(JSON.readTree(json));
    }

    private static final FeatureRef F1 = new FeatureRef("gemma-scope-2b-pt-res/layer_12/width_16k", 4711, 7.25);
    private static final FeatureRef F2 = new FeatureRef("gemma-scope-2b-pt-res/layer_12/width_16k", 0, -0.125);

    static Stream<Arguments> decisions() {
        List<Arguments> cases = new ArrayList<>();
        for (Action action : Action.values()) {
            cases.add(Arguments.of("minimal " + action.wireName(), Decision.builder("r-1", 0, action, 0).build()));
            Decision.Builder full = Decision.builder("req-7f3a", 12, action, 57)
                    .detector("weapons-dsg")
                    .tier(Tier.HIGH)
                    .score(0.42)
                    .features(List.of(F1, F2))
                    .reason("weapons features fired on 42% of tokens")
                    .latencyMs(18.5)
                    .ts(1767225600123L);
            cases.add(Arguments.of("full " + action.wireName() + " without vector", full.build()));
            cases.add(Arguments.of("full " + action.wireName() + " with steering vector",
                    full.vector(VectorRef.of("refusal-12", 4.0)).build()));
            cases.add(Arguments.of("full " + action.wireName() + " with clamp vector",
                    full.vector(VectorRef.of("refusal-12", 1.0).withValue(-3.5)).build()));
        }
        return cases.stream();
    }

    static Stream<Arguments> prompts() {
        return Stream.of(
                Arguments.of("minimal", PromptEvent.of("r-1", "", 0)),
                Arguments.of("full", PromptEvent.of("req-7f3a", "How do I bake bread? \u00e9\u4e2d\ud83d\ude00\n\"quoted\"", 1767225600000L)
                        .withModel("google/gemma-2-2b-it")
                        .withRole(Role.ASSISTANT)
                        .withTenant("acme")
                        .withPhase(Phase.GENERATION)
                        .withReplyPartition(7)));
    }

    static Stream<Arguments> alerts() {
        Decision minimal = Decision.builder("r-1", 0, Action.FLAG, 0).detector("d").score(0.0).build();
        Decision full = Decision.builder("req-7f3a", 3, Action.CLAMP, 57)
                .detector("weapons-dsg")
                .tier(Tier.MEDIUM)
                .score(0.42)
                .features(List.of(F1, F2))
                .vector(VectorRef.of("refusal-12", 1.0).withValue(0.0))
                .reason("weapons features fired on 42% of tokens")
                .latencyMs(0.0)
                .ts(1767225600123L)
                .build();
        return Stream.of(
                Arguments.of("minimal", Alert.forDecision(minimal).build()),
                Arguments.of("full", Alert.forDecision(full)
                        .labels(ref -> ref.id() == 4711
                                ? AlertFeature.of(ref).withLabel("firearm assembly").withExplanation("fires on gun parts")
                                : AlertFeature.of(ref))
                        .positions(List.of(51L, 52L, 57L))
                        .excerpt("...the barrel and the...")
                        .highlights(List.of(new ExcerptSpan(7, 13)))
                        .hook("blocks.12.hook_resid_post")
                        .model("google/gemma-2-2b-it")
                        .sae("gemma-scope-2b-pt-res/layer_12/width_16k")
                        .build()));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("decisions")
    void encodedDecisionIsValidAgainstTheSchema(String name, Decision decision) throws Exception {
        // Given
        byte[] json = codec.encode(decision);

        // When
        Set<ValidationMessage> errors = validate(DECISION, json);

        // Then
        assertThat(errors).as(new String(json, StandardCharsets.UTF_8)).isEmpty();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("decisions")
    void aDecisionWithADetectorEncodedAsShadowIsValidAgainstTheShadowSchemaAndSurvivesDecode(String name, Decision decision) throws Exception {
        // Given: every decision of the set, named by a detector when it has none
        ShadowDecision shadow = new ShadowDecision(decision.detector().isPresent() ? decision : decision.toBuilder().detector("trial").build());
        byte[] json = codec.encode(shadow);

        // When
        Set<ValidationMessage> errors = validate(SHADOW, json);
        ShadowDecision decoded = codec.decodeShadow(json);

        // Then
        assertThat(errors).as(new String(json, StandardCharsets.UTF_8)).isEmpty();
        assertThat(JSON.readTree(json).path("shadow").asBoolean()).isTrue();
        assertThat(decoded).isEqualTo(shadow);
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"block\", \"detector\": \"d\", \"position\": 0, \"shadow\": true}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"block\", \"position\": 0, \"shadow\": true}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"block\", \"detector\": \"d\", \"position\": 0}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"block\", \"detector\": \"d\", \"position\": 0, \"shadow\": false}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"block\", \"detector\": \"d\", \"position\": 0, \"shadow\": \"true\"}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"block\", \"detector\": \"d\", \"position\": 0, \"shadow\": true, \"positions\": []}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"block\", \"detector\": \"\", \"position\": 0, \"shadow\": true}",
    })
    void schemaAndCodecAgreeOnWhichShadowDecisionsAreValid(String text) throws Exception {
        // Given
        byte[] json = text.getBytes(StandardCharsets.UTF_8);

        // When
        boolean schemaAccepts = validate(SHADOW, json).isEmpty();
        boolean codecAccepts;
        try {
            codec.decodeShadow(json);
            codecAccepts = true;
        } catch (DecodeException e) {
            codecAccepts = false;
        }

        // Then
        assertThat(codecAccepts).as("codec accepts " + text).isEqualTo(schemaAccepts);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("decisions")
    void decisionSurvivesEncodeThenDecode(String name, Decision decision) throws Exception {
        // Given
        byte[] json = codec.encode(decision);

        // When
        Decision decoded = codec.decodeDecision(json);

        // Then
        assertThat(decoded).isEqualTo(decision);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("prompts")
    void encodedPromptIsValidAgainstTheSchemaAndSurvivesDecode(String name, PromptEvent prompt) throws Exception {
        // Given
        byte[] json = codec.encode(prompt);

        // When
        Set<ValidationMessage> errors = validate(PROMPT, json);
        PromptEvent decoded = codec.decodePrompt(json);

        // Then
        assertThat(errors).as(new String(json, StandardCharsets.UTF_8)).isEmpty();
        assertThat(decoded).isEqualTo(prompt);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("alerts")
    void encodedAlertIsValidAgainstTheSchemaAndSurvivesDecode(String name, Alert alert) throws Exception {
        // Given
        byte[] json = codec.encode(alert);

        // When
        Set<ValidationMessage> errors = validate(ALERT, json);
        Alert decoded = codec.decodeAlert(json);

        // Then
        assertThat(errors).as(new String(json, StandardCharsets.UTF_8)).isEmpty();
        assertThat(decoded).isEqualTo(alert);
    }

    @Test
    void decisionWithAnUnknownActionFailsBothTheSchemaAndTheCodec() throws Exception {
        // Given
        byte[] json = """
                {"request_id": "r-1", "seq": 0, "action": "stop", "position": 0}
                """.getBytes(StandardCharsets.UTF_8);

        // When
        Set<ValidationMessage> errors = validate(DECISION, json);

        // Then
        assertThat(errors).extracting(ValidationMessage::getInstanceLocation).asString().contains("action");
        assertThatThrownBy(() -> codec.decodeDecision(json))
                .isInstanceOf(DecodeException.class)
                .hasMessageContaining("\"action\"");
    }

    /** Hand-written decisions probing each rule of the schema; the codec must accept exactly what the schema accepts. */
    @ParameterizedTest
    @ValueSource(strings = {
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"allow\", \"position\": 0}",
        "{\"request_id\": \"r\", \"seq\": 3.0, \"action\": \"allow\", \"position\": 0}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"block\", \"position\": 9, \"features\": [], \"tier\": \"low\"}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"steer\", \"position\": 0, \"vector\": {\"id\": \"v\", \"coefficient\": -2}}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"allow\", \"position\": 0, \"features\": [{\"sae\": \"s\", \"id\": 2147483647, \"value\": 1e-3}]}",
        "{\"request_id\": \"\", \"seq\": 0, \"action\": \"allow\", \"position\": 0}",
        "{\"request_id\": \"r\", \"seq\": -1, \"action\": \"allow\", \"position\": 0}",
        "{\"request_id\": \"r\", \"seq\": 1.5, \"action\": \"allow\", \"position\": 0}",
        "{\"request_id\": \"r\", \"seq\": \"1\", \"action\": \"allow\", \"position\": 0}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"ALLOW\", \"position\": 0}",
        "{\"request_id\": \"r\", \"seq\": 0, \"position\": 0}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"allow\"}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"allow\", \"position\": 0, \"colour\": \"red\"}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"allow\", \"position\": 0, \"detector\": null}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"allow\", \"position\": 0, \"detector\": \"\"}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"allow\", \"position\": 0, \"tier\": \"extreme\"}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"allow\", \"position\": 0, \"score\": \"high\"}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"allow\", \"position\": 0, \"latency_ms\": -0.5}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"allow\", \"position\": 0, \"ts\": -1}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"allow\", \"position\": 0, \"features\": {}}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"allow\", \"position\": 0, \"features\": [{\"sae\": \"s\", \"id\": 1}]}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"allow\", \"position\": 0, \"features\": [{\"sae\": \"s\", \"id\": -1, \"value\": 0}]}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"allow\", \"position\": 0, \"features\": [{\"sae\": \"s\", \"id\": 2147483648, \"value\": 0}]}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"allow\", \"position\": 0, \"features\": [{\"sae\": \"s\", \"id\": 1, \"value\": 0, \"label\": \"x\"}]}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"steer\", \"position\": 0, \"vector\": {\"id\": \"v\"}}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"steer\", \"position\": 0, \"vector\": {\"id\": \"v\", \"coefficient\": 1, \"scale\": 2}}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"steer\", \"position\": 0, \"vector\": \"v\"}",
        "[{\"request_id\": \"r\", \"seq\": 0, \"action\": \"allow\", \"position\": 0}]",
    })
    void schemaAndCodecAgreeOnWhichDecisionsAreValid(String text) throws Exception {
        // Given
        byte[] json = text.getBytes(StandardCharsets.UTF_8);

        // When
        boolean schemaAccepts = validate(DECISION, json).isEmpty();
        boolean codecAccepts;
        try {
            codec.decodeDecision(json);
            codecAccepts = true;
        } catch (DecodeException e) {
            codecAccepts = false;
        }

        // Then
        assertThat(codecAccepts).as("codec accepts " + text).isEqualTo(schemaAccepts);
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"flag\", \"detector\": \"d\", \"score\": 1, \"position\": 0}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"flag\", \"score\": 1, \"position\": 0}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"flag\", \"detector\": \"d\", \"position\": 0}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"flag\", \"detector\": \"d\", \"score\": 1, \"position\": 0, \"positions\": [1, -1]}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"flag\", \"detector\": \"d\", \"score\": 1, \"position\": 0, \"hook\": \"\"}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"flag\", \"detector\": \"d\", \"score\": 1, \"position\": 0, \"excerpt\": 3}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"flag\", \"detector\": \"d\", \"score\": 1, \"position\": 0, \"excerpt\": \"abc\", \"excerpt_highlights\": [{\"start\": 0, \"end\": 2}]}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"flag\", \"detector\": \"d\", \"score\": 1, \"position\": 0, \"excerpt\": \"abc\", \"excerpt_highlights\": [{\"start\": 0}]}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"flag\", \"detector\": \"d\", \"score\": 1, \"position\": 0, \"excerpt\": \"abc\", \"excerpt_highlights\": [{\"start\": -1, \"end\": 2}]}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"flag\", \"detector\": \"d\", \"score\": 1, \"position\": 0, \"features\": [{\"sae\": \"s\", \"id\": 1, \"value\": 0, \"label\": \"x\", \"explanation\": \"y\"}]}",
        "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"flag\", \"detector\": \"d\", \"score\": 1, \"position\": 0, \"features\": [{\"sae\": \"s\", \"id\": 1, \"value\": 0, \"label\": null}]}",
    })
    void schemaAndCodecAgreeOnWhichAlertsAreValid(String text) throws Exception {
        // Given
        byte[] json = text.getBytes(StandardCharsets.UTF_8);

        // When
        boolean schemaAccepts = validate(ALERT, json).isEmpty();
        boolean codecAccepts;
        try {
            codec.decodeAlert(json);
            codecAccepts = true;
        } catch (DecodeException e) {
            codecAccepts = false;
        }

        // Then
        assertThat(codecAccepts).as("codec accepts " + text).isEqualTo(schemaAccepts);
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "{\"request_id\": \"r\", \"text\": \"hi\", \"ts\": 0}",
        "{\"request_id\": \"r\", \"text\": \"hi\", \"ts\": 0, \"role\": \"tool\", \"phase\": \"prompt\"}",
        "{\"request_id\": \"r\", \"ts\": 0}",
        "{\"request_id\": \"r\", \"text\": \"hi\"}",
        "{\"request_id\": \"r\", \"text\": \"hi\", \"ts\": 0, \"role\": \"bot\"}",
        "{\"request_id\": \"r\", \"text\": \"hi\", \"ts\": 0, \"phase\": \"decode\"}",
        "{\"request_id\": \"r\", \"text\": \"hi\", \"ts\": 0, \"tenant\": \"\"}",
        "{\"request_id\": \"r\", \"text\": null, \"ts\": 0}",
        "{\"request_id\": \"r\", \"text\": \"hi\", \"ts\": 0, \"seq\": 1}",
        "{\"request_id\": \"r\", \"text\": \"hi\", \"ts\": 0, \"reply_partition\": 0}",
        "{\"request_id\": \"r\", \"text\": \"hi\", \"ts\": 0, \"reply_partition\": 11}",
        "{\"request_id\": \"r\", \"text\": \"hi\", \"ts\": 0, \"reply_partition\": -1}",
        "{\"request_id\": \"r\", \"text\": \"hi\", \"ts\": 0, \"reply_partition\": 1.5}",
        "{\"request_id\": \"r\", \"text\": \"hi\", \"ts\": 0, \"reply_partition\": \"3\"}",
        "{\"request_id\": \"r\", \"text\": \"hi\", \"ts\": 0, \"reply_partition\": 2147483648}",
        "{\"request_id\": \"r\", \"text\": \"hi\", \"ts\": 0, \"reply_partition\": null}",
    })
    void schemaAndCodecAgreeOnWhichPromptsAreValid(String text) throws Exception {
        // Given
        byte[] json = text.getBytes(StandardCharsets.UTF_8);

        // When
        boolean schemaAccepts = validate(PROMPT, json).isEmpty();
        boolean codecAccepts;
        try {
            codec.decodePrompt(json);
            codecAccepts = true;
        } catch (DecodeException e) {
            codecAccepts = false;
        }

        // Then
        assertThat(codecAccepts).as("codec accepts " + text).isEqualTo(schemaAccepts);
    }

    static Stream<Arguments> reviews() {
        return Stream.of(
                Arguments.of("without a note", new Review("r-1", 0, Verdict.TRUE_POSITIVE, "toxicity", "alice", java.util.Optional.empty(), 0)),
                Arguments.of("with a note that looks like HTML", new Review("req/with/slashes", 7, Verdict.FALSE_POSITIVE, "harmful-request",
                        "bob", java.util.Optional.of("<script>alert('x')</script> \u00e9\ud83d\ude00 \"quoted\""), 1767225600123L)),
                Arguments.of("unsure with the longest note", new Review("r", 3, Verdict.UNSURE, "d", "c",
                        java.util.Optional.of("x".repeat(Review.MAX_NOTE_CHARS)), 5)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("reviews")
    void encodedReviewIsValidAgainstTheSchemaAndSurvivesDecode(String name, Review review) throws Exception {
        // Given
        byte[] json = codec.encode(review);

        // When
        Set<ValidationMessage> errors = validate(REVIEW, json);
        Review decoded = codec.decodeReview(json);

        // Then
        assertThat(errors).isEmpty();
        assertThat(decoded).isEqualTo(review);
        assertThat(JSON.readTree(json).path("alert_id").asText()).isEqualTo(review.requestId() + "/" + review.seq());
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "{\"alert_id\": \"r/0\", \"request_id\": \"r\", \"seq\": 0, \"verdict\": \"unsure\", \"detector\": \"d\", \"reviewer\": \"a\", \"time\": 0}",
        "{\"alert_id\": \"r/0\", \"request_id\": \"r\", \"seq\": 0, \"verdict\": \"maybe\", \"detector\": \"d\", \"reviewer\": \"a\", \"time\": 0}",
        "{\"alert_id\": \"r/0\", \"request_id\": \"r\", \"seq\": -1, \"verdict\": \"unsure\", \"detector\": \"d\", \"reviewer\": \"a\", \"time\": 0}",
        "{\"alert_id\": \"r/0\", \"request_id\": \"r\", \"seq\": 0, \"verdict\": \"unsure\", \"reviewer\": \"a\", \"time\": 0}",
        "{\"alert_id\": \"r/0\", \"request_id\": \"r\", \"seq\": 0, \"verdict\": \"unsure\", \"detector\": \"d\", \"reviewer\": \"a\", \"time\": 0, \"note\": null}",
        "{\"alert_id\": \"r/0\", \"request_id\": \"r\", \"seq\": 0, \"verdict\": \"unsure\", \"detector\": \"d\", \"reviewer\": \"a\", \"time\": 0, \"extra\": 1}",
        "{\"alert_id\": \"r/0\", \"request_id\": \"r\", \"seq\": 0, \"verdict\": \"unsure\", \"detector\": \"\", \"reviewer\": \"a\", \"time\": 0}",
    })
    void schemaAndCodecAgreeOnWhichReviewsAreValid(String text) throws Exception {
        // Given
        byte[] json = text.getBytes(StandardCharsets.UTF_8);

        // When
        boolean schemaAccepts = validate(REVIEW, json).isEmpty();
        boolean codecAccepts;
        try {
            codec.decodeReview(json);
            codecAccepts = true;
        } catch (DecodeException e) {
            codecAccepts = false;
        }

        // Then
        assertThat(codecAccepts).as("codec accepts " + text).isEqualTo(schemaAccepts);
    }

    @Test
    void aReviewWhoseAlertIdIsNotItsRequestIdAndSeqIsRejected() {
        // Given
        byte[] json = ("{\"alert_id\": \"other/1\", \"request_id\": \"r\", \"seq\": 0, \"verdict\": \"unsure\", \"detector\": \"d\", "
                + "\"reviewer\": \"a\", \"time\": 0}").getBytes(StandardCharsets.UTF_8);

        // When / Then
        assertThatThrownBy(() -> codec.decodeReview(json)).isInstanceOf(DecodeException.class).hasMessageContaining("\"r/0\"");
    }

    @Test
    void reviewVerdictEnumListsExactlyTheJavaEnumWireNames() throws Exception {
        // Given
        JsonNode review = schemaNode("review").path("properties");

        // When
        List<String> verdicts = strings(review.path("verdict").path("enum"));

        // Then
        assertThat(verdicts).containsExactly(Arrays.stream(Verdict.values()).map(Verdict::wireName).toArray(String[]::new));
        assertThat(review.path("note").path("maxLength").asInt()).isEqualTo(Review.MAX_NOTE_CHARS);
    }

    @ParameterizedTest
    @ValueSource(strings = {"prompt", "decision", "alert", "shadow", "judge-request", "judge-verdict", "review"})
    void schemaIsAValidDraft202012Schema(String name) throws Exception {
        // Given
        JsonSchema metaSchema = FACTORY.getSchema(SchemaLocation.of(SchemaId.V202012));
        JsonNode schema = schemaNode(name);

        // When
        Set<ValidationMessage> errors = metaSchema.validate(schema);

        // Then
        assertThat(errors).isEmpty();
        assertThat(schema.path("$id").asText()).isEqualTo("https://saeguard.io/schemas/" + name + ".schema.json");
        assertThat(schema.path("title").asText()).isNotBlank();
    }

    @ParameterizedTest
    @ValueSource(strings = {"prompt", "decision", "alert", "shadow", "judge-request", "judge-verdict", "review"})
    void everyPropertyOfTheSchemaIsDescribed(String name) throws Exception {
        // Given
        JsonNode schema = schemaNode(name);
        List<String> undescribed = new ArrayList<>();

        // When
        collectUndescribedProperties(schema, "", undescribed);

        // Then
        assertThat(schema.path("description").asText()).isNotBlank();
        assertThat(undescribed).isEmpty();
    }

    @ParameterizedTest
    @ValueSource(strings = {"prompt", "decision", "alert", "shadow", "judge-request", "judge-verdict", "review"})
    void schemaExamplesAreValidAndDecode(String name) throws Exception {
        // Given
        JsonNode examples = schemaNode(name).path("examples");
        JsonSchema schema = schema(name);
        List<ValidationMessage> errors = new ArrayList<>();
        List<Object> decoded = new ArrayList<>();

        // When
        for (JsonNode example : examples) {
            errors.addAll(schema.validate(example));
            byte[] json = JSON.writeValueAsBytes(example);
            decoded.add(switch (name) {
                case "prompt" -> codec.decodePrompt(json);
                case "decision" -> codec.decodeDecision(json);
                case "shadow" -> codec.decodeShadow(json);
                case "judge-request" -> codec.decodeJudgeRequest(json);
                case "judge-verdict" -> codec.decodeJudgeVerdict(json);
                case "review" -> codec.decodeReview(json);
                default -> codec.decodeAlert(json);
            });
        }

        // Then
        assertThat(examples).isNotEmpty();
        assertThat(errors).isEmpty();
        assertThat(decoded).hasSize(examples.size());
    }

    @Test
    void aJudgeRequestIsValidAgainstItsSchemaAndSurvivesDecode() throws Exception {
        // Given
        JudgeRequest request = new JudgeRequest("req-7f3a", 2, "cyber-probe", java.util.OptionalDouble.of(0.61), 64, List.of(F1),
                java.util.Optional.of("some text \u00e9"), 2000, Action.BLOCK, 1767225600123L);

        // When
        byte[] json = codec.encode(request);

        // Then
        assertThat(validate(schema("judge-request"), json)).isEmpty();
        assertThat(codec.decodeJudgeRequest(json)).isEqualTo(request);
    }

    @Test
    void aJudgeVerdictIsValidAgainstItsSchemaAndSurvivesDecode() throws Exception {
        // Given
        JudgeVerdict verdict = new JudgeVerdict("req-7f3a", "cyber-probe", Action.ALLOW, "benign", java.util.Optional.of("m"),
                java.util.OptionalLong.of(5));

        // When
        byte[] json = codec.encode(verdict);

        // Then
        assertThat(validate(schema("judge-verdict"), json)).isEmpty();
        assertThat(codec.decodeJudgeVerdict(json)).isEqualTo(verdict);
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "{\"request_id\":\"r\",\"detector\":\"d\",\"action\":\"steer\",\"reason\":\"\"}",
        "{\"request_id\":\"r\",\"detector\":\"d\",\"action\":\"block\"}",
        "{\"request_id\":\"\",\"detector\":\"d\",\"action\":\"block\",\"reason\":\"x\"}",
        "{\"request_id\":\"r\",\"detector\":\"d\",\"action\":\"block\",\"reason\":\"x\",\"extra\":1}",
        "{\"request_id\":\"r\",\"detector\":\"d\",\"action\":\"flag\",\"reason\":\"x\",\"judge\":\"m\",\"ts\":3}"
    })
    void schemaAndCodecAgreeOnWhichJudgeVerdictsAreValid(String text) throws Exception {
        // Given
        byte[] json = text.getBytes(StandardCharsets.UTF_8);

        // When
        boolean schemaAccepts = validate(schema("judge-verdict"), json).isEmpty();
        boolean codecAccepts;
        try {
            codec.decodeJudgeVerdict(json);
            codecAccepts = true;
        } catch (DecodeException e) {
            codecAccepts = false;
        }

        // Then
        assertThat(codecAccepts).as("codec accepts " + text).isEqualTo(schemaAccepts);
    }

    @Test
    void schemaEnumsListExactlyTheJavaEnumWireNames() throws Exception {
        // Given
        JsonNode prompt = schemaNode("prompt").path("properties");
        JsonNode decision = schemaNode("decision").path("properties");
        JsonNode alert = schemaNode("alert").path("properties");

        // When
        List<String> promptRoles = strings(prompt.path("role").path("enum"));
        List<String> promptPhases = strings(prompt.path("phase").path("enum"));
        List<String> decisionActions = strings(decision.path("action").path("enum"));
        List<String> decisionTiers = strings(decision.path("tier").path("enum"));
        List<String> alertActions = strings(alert.path("action").path("enum"));
        List<String> alertTiers = strings(alert.path("tier").path("enum"));

        // Then
        assertThat(promptRoles).containsExactly(Arrays.stream(Role.values()).map(Role::wireName).toArray(String[]::new));
        assertThat(promptPhases).containsExactly(Arrays.stream(Phase.values()).map(Phase::wireName).toArray(String[]::new));
        assertThat(decisionActions).containsExactly(Arrays.stream(Action.values()).map(Action::wireName).toArray(String[]::new));
        assertThat(decisionTiers).containsExactly(Arrays.stream(Tier.values()).map(Tier::wireName).toArray(String[]::new));
        assertThat(alertActions).isEqualTo(decisionActions);
        assertThat(alertTiers).isEqualTo(decisionTiers);
        assertThat(prompt.path("role").path("default").asText()).isEqualTo(Role.USER.wireName());
    }

    @ParameterizedTest
    @ValueSource(strings = {"prompt", "decision", "alert", "shadow", "judge-request", "judge-verdict", "review"})
    void schemaOnTheClasspathIsTheFileInTheModuleDirectory(String name) throws Exception {
        // Given
        Path source = Path.of("schemas", name + ".schema.json");

        // When
        JsonNode onClasspath = schemaNode(name);

        // Then
        assertThat(onClasspath).isEqualTo(JSON.readTree(Files.readAllBytes(source)));
    }

    private static JsonNode schemaNode(String name) throws Exception {
        try (var in = EventSchemaTest.class.getClassLoader().getResourceAsStream(SCHEMA_DIR + name + ".schema.json")) {
            assertThat(in).as("schema " + name + " on the classpath").isNotNull();
            return JSON.readTree(in);
        }
    }

    private static List<String> strings(JsonNode array) {
        List<String> values = new ArrayList<>();
        array.forEach(v -> values.add(v.asText()));
        return values;
    }

    private static void collectUndescribedProperties(JsonNode schema, String path, List<String> undescribed) {
        for (var property : schema.path("properties").properties()) {
            String propertyPath = path + property.getKey();
            JsonNode propertySchema = property.getValue();
            if (propertySchema.path("description").asText().isBlank()) {
                undescribed.add(propertyPath);
            }
            collectUndescribedProperties(propertySchema, propertyPath + ".", undescribed);
            collectUndescribedProperties(propertySchema.path("items"), propertyPath + "[].", undescribed);
        }
    }
}
