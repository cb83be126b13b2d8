package io.saeguard.topics.events;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.saeguard.topics.DecodeException;
import io.saeguard.topics.DecodeException.Reason;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.OptionalDouble;
import org.junit.jupiter.api.Test;

class EventCodecTest {
    private final EventCodec codec = new EventCodec();

    private static byte[] utf8(String json) {
        return json.getBytes(StandardCharsets.UTF_8);
    }

    private DecodeException decodeDecisionFailure(String json) {
        return catchThrowableOfType(DecodeException.class, () -> codec.decodeDecision(utf8(json)));
    }

    private DecodeException decodeAlertFailure(String json) {
        return catchThrowableOfType(DecodeException.class, () -> codec.decodeAlert(utf8(json)));
    }

    private DecodeException decodePromptFailure(String json) {
        return catchThrowableOfType(DecodeException.class, () -> codec.decodePrompt(utf8(json)));
    }

    @Test
    void unknownActionIsAnInvalidValueNamingTheFieldAndTheAllowedValues() {
        // Given
        String json = "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"stop\", \"position\": 0}";

        // When
        DecodeException e = decodeDecisionFailure(json);

        // Then
        assertThat(e.reason()).isEqualTo(Reason.INVALID_VALUE);
        assertThat(e).hasMessage("decision: field \"action\" must be one of allow|flag|steer|clamp|block, found \"stop\"");
    }

    @Test
    void textThatIsNotJsonIsMalformed() {
        // Given
        String json = "{\"request_id\": \"r\", \"seq\": 0,";

        // When
        DecodeException e = decodeDecisionFailure(json);

        // Then
        assertThat(e.reason()).isEqualTo(Reason.MALFORMED_HEADER);
        assertThat(e).hasMessageStartingWith("decision: not valid JSON at byte offset ");
    }

    @Test
    void emptyRecordIsMalformed() {
        // Given
        byte[] json = new byte[0];

        // When
        DecodeException e = catchThrowableOfType(DecodeException.class, () -> codec.decodePrompt(json));

        // Then
        assertThat(e.reason()).isEqualTo(Reason.MALFORMED_HEADER);
        assertThat(e).hasMessageContaining("prompt: empty record");
    }

    @Test
    void trailingContentAfterTheObjectIsMalformed() {
        // Given
        String json = "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"allow\", \"position\": 0} {}";

        // When
        DecodeException e = decodeDecisionFailure(json);

        // Then
        assertThat(e.reason()).isEqualTo(Reason.MALFORMED_HEADER);
        assertThat(e).hasMessageStartingWith("decision: not valid JSON");
    }

    @Test
    void duplicateFieldIsMalformedRatherThanLastOneWins() {
        // Given
        String json = "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"block\", \"action\": \"allow\", \"position\": 0}";

        // When
        DecodeException e = decodeDecisionFailure(json);

        // Then
        assertThat(e.reason()).isEqualTo(Reason.MALFORMED_HEADER);
        assertThat(e).hasMessageContaining("action");
    }

    @Test
    void topLevelArrayIsMalformed() {
        // Given
        String json = "[{\"request_id\": \"r\", \"seq\": 0, \"action\": \"allow\", \"position\": 0}]";

        // When
        DecodeException e = decodeDecisionFailure(json);

        // Then
        assertThat(e.reason()).isEqualTo(Reason.MALFORMED_HEADER);
        assertThat(e).hasMessage("decision: expected a JSON object, found an array");
    }

    @Test
    void unknownFieldIsRejectedByName() {
        // Given
        String json = "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"allow\", \"position\": 0, \"latencyMs\": 3}";

        // When
        DecodeException e = decodeDecisionFailure(json);

        // Then
        assertThat(e.reason()).isEqualTo(Reason.MALFORMED_HEADER);
        assertThat(e).hasMessageStartingWith("decision: unknown field \"latencyMs\"").hasMessageContaining("latency_ms");
    }

    @Test
    void unknownFieldInsideAFeatureIsRejectedWithItsPath() {
        // Given
        String json = "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"flag\", \"position\": 0,"
                + " \"features\": [{\"sae\": \"s\", \"id\": 1, \"value\": 2, \"label\": \"x\"}]}";

        // When
        DecodeException e = decodeDecisionFailure(json);

        // Then
        assertThat(e.reason()).isEqualTo(Reason.MALFORMED_HEADER);
        assertThat(e).hasMessageStartingWith("decision: unknown field \"features[0].label\"");
    }

    @Test
    void missingActionIsAMissingField() {
        // Given
        String json = "{\"request_id\": \"r\", \"seq\": 0, \"position\": 0}";

        // When
        DecodeException e = decodeDecisionFailure(json);

        // Then
        assertThat(e.reason()).isEqualTo(Reason.MISSING_FIELD);
        assertThat(e).hasMessage("decision: required field \"action\" is missing");
    }

    @Test
    void missingVectorCoefficientIsAMissingFieldNamedByItsPath() {
        // Given
        String json = "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"steer\", \"position\": 0, \"vector\": {\"id\": \"v\"}}";

        // When
        DecodeException e = decodeDecisionFailure(json);

        // Then
        assertThat(e.reason()).isEqualTo(Reason.MISSING_FIELD);
        assertThat(e).hasMessage("decision: required field \"vector.coefficient\" is missing");
    }

    @Test
    void negativeSeqIsAnInvalidValue() {
        // Given
        String json = "{\"request_id\": \"r\", \"seq\": -1, \"action\": \"allow\", \"position\": 0}";

        // When
        DecodeException e = decodeDecisionFailure(json);

        // Then
        assertThat(e.reason()).isEqualTo(Reason.INVALID_VALUE);
        assertThat(e).hasMessage("decision: field \"seq\" must be an integer >= 0, found -1");
    }

    @Test
    void fractionalPositionIsAnInvalidValue() {
        // Given
        String json = "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"allow\", \"position\": 1.5}";

        // When
        DecodeException e = decodeDecisionFailure(json);

        // Then
        assertThat(e.reason()).isEqualTo(Reason.INVALID_VALUE);
        assertThat(e).hasMessage("decision: field \"position\" must be an integer >= 0, found 1.5");
    }

    @Test
    void featureIdGivenAsAStringIsAnInvalidValueNamedByItsPath() {
        // Given
        String json = "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"flag\", \"position\": 0, \"features\": ["
                + "{\"sae\": \"s\", \"id\": 1, \"value\": 2}, {\"sae\": \"s\", \"id\": \"7\", \"value\": 2}]}";

        // When
        DecodeException e = decodeDecisionFailure(json);

        // Then
        assertThat(e.reason()).isEqualTo(Reason.INVALID_VALUE);
        assertThat(e).hasMessage("decision: field \"features[1].id\" must be an integer from 0 to 2147483647, found \"7\"");
    }

    @Test
    void nullForAnOptionalFieldIsAnInvalidValueBecauseAbsentFieldsAreOmitted() {
        // Given
        String json = "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"allow\", \"position\": 0, \"detector\": null}";

        // When
        DecodeException e = decodeDecisionFailure(json);

        // Then
        assertThat(e.reason()).isEqualTo(Reason.INVALID_VALUE);
        assertThat(e).hasMessage("decision: field \"detector\" must be a non-empty string, found null");
    }

    @Test
    void negativeLatencyIsAnInvalidValue() {
        // Given
        String json = "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"allow\", \"position\": 0, \"latency_ms\": -0.5}";

        // When
        DecodeException e = decodeDecisionFailure(json);

        // Then
        assertThat(e.reason()).isEqualTo(Reason.INVALID_VALUE);
        assertThat(e).hasMessage("decision: field \"latency_ms\" must be a finite number >= 0, found -0.5");
    }

    @Test
    void scoreTooLargeForADoubleIsAnInvalidValue() {
        // Given
        String json = "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"allow\", \"position\": 0, \"score\": 1e400}";

        // When
        DecodeException e = decodeDecisionFailure(json);

        // Then
        assertThat(e.reason()).isEqualTo(Reason.INVALID_VALUE);
        assertThat(e).hasMessageStartingWith("decision: field \"score\" must be a finite number");
    }

    @Test
    void alertWithoutDetectorIsAMissingField() {
        // Given
        String json = "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"flag\", \"score\": 0.9, \"position\": 0}";

        // When
        DecodeException e = decodeAlertFailure(json);

        // Then
        assertThat(e.reason()).isEqualTo(Reason.MISSING_FIELD);
        assertThat(e).hasMessage("alert: required field \"detector\" is missing");
    }

    @Test
    void alertWithoutScoreIsAMissingField() {
        // Given
        String json = "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"flag\", \"detector\": \"d\", \"position\": 0}";

        // When
        DecodeException e = decodeAlertFailure(json);

        // Then
        assertThat(e.reason()).isEqualTo(Reason.MISSING_FIELD);
        assertThat(e).hasMessage("alert: required field \"score\" is missing");
    }

    @Test
    void alertPositionBelowZeroIsAnInvalidValueNamedByItsIndex() {
        // Given
        String json = "{\"request_id\": \"r\", \"seq\": 0, \"action\": \"flag\", \"detector\": \"d\", \"score\": 1,"
                + " \"position\": 0, \"positions\": [4, -2]}";

        // When
        DecodeException e = decodeAlertFailure(json);

        // Then
        assertThat(e.reason()).isEqualTo(Reason.INVALID_VALUE);
        assertThat(e).hasMessage("alert: field \"positions[1]\" must be an integer >= 0, found -2");
    }

    @Test
    void promptWithoutTextIsAMissingField() {
        // Given
        String json = "{\"request_id\": \"r\", \"ts\": 0}";

        // When
        DecodeException e = decodePromptFailure(json);

        // Then
        assertThat(e.reason()).isEqualTo(Reason.MISSING_FIELD);
        assertThat(e).hasMessage("prompt: required field \"text\" is missing");
    }

    @Test
    void promptWithEmptyRequestIdIsAnInvalidValue() {
        // Given
        String json = "{\"request_id\": \"\", \"text\": \"hi\", \"ts\": 0}";

        // When
        DecodeException e = decodePromptFailure(json);

        // Then
        assertThat(e.reason()).isEqualTo(Reason.INVALID_VALUE);
        assertThat(e).hasMessage("prompt: field \"request_id\" must be a non-empty string, found \"\"");
    }

    @Test
    void promptWithUnknownRoleIsAnInvalidValue() {
        // Given
        String json = "{\"request_id\": \"r\", \"text\": \"hi\", \"ts\": 0, \"role\": \"bot\"}";

        // When
        DecodeException e = decodePromptFailure(json);

        // Then
        assertThat(e.reason()).isEqualTo(Reason.INVALID_VALUE);
        assertThat(e).hasMessage("prompt: field \"role\" must be one of system|user|assistant|tool, found \"bot\"");
    }

    @Test
    void errorMessageQuotesOnlyTheStartOfALongOffendingValue() {
        // Given
        String secret = "x".repeat(35) + "TAIL-THAT-MUST-NOT-LEAK" + "y".repeat(1000);
        String json = "{\"request_id\": \"r\", \"text\": \"hi\", \"ts\": 0, \"role\": \"" + secret + "\"}";

        // When
        DecodeException e = decodePromptFailure(json);

        // Then
        assertThat(e.reason()).isEqualTo(Reason.INVALID_VALUE);
        assertThat(e.getMessage()).contains("\"xxxxx").doesNotContain("MUST-NOT-LEAK").hasSizeLessThan(200);
    }

    @Test
    void promptWithoutRoleDecodesAsAUserPrompt() throws Exception {
        // Given
        String json = "{\"request_id\": \"r\", \"text\": \"hi\", \"ts\": 5}";

        // When
        PromptEvent prompt = codec.decodePrompt(utf8(json));

        // Then
        assertThat(prompt).isEqualTo(PromptEvent.of("r", "hi", 5));
        assertThat(prompt.role()).isEqualTo(Role.USER);
    }

    @Test
    void decisionWithoutFeaturesDecodesWithAnEmptyList() throws Exception {
        // Given
        String json = "{\"request_id\": \"r\", \"seq\": 2, \"action\": \"allow\", \"position\": 7}";

        // When
        Decision decision = codec.decodeDecision(utf8(json));

        // Then
        assertThat(decision.features()).isEmpty();
        assertThat(decision.detector()).isEmpty();
        assertThat(decision.score()).isEqualTo(OptionalDouble.empty());
        assertThat(decision.seq()).isEqualTo(2);
        assertThat(decision.position()).isEqualTo(7);
    }

    @Test
    void minimalDecisionEncodesOnlyTheRequiredFieldsAndTheFeatureList() {
        // Given
        Decision decision = Decision.builder("r-1", 0, Action.ALLOW, 3).build();

        // When
        String json = new String(codec.encode(decision), StandardCharsets.UTF_8);

        // Then
        assertThat(json).isEqualTo("{\"request_id\":\"r-1\",\"seq\":0,\"action\":\"allow\",\"position\":3,\"features\":[]}");
    }

    @Test
    void fullDecisionEncodesSnakeCaseFieldsAndLowerCaseEnums() {
        // Given
        Decision decision = Decision.builder("r-1", 4, Action.CLAMP, 12)
                .detector("weapons")
                .tier(Tier.HIGH)
                .score(0.75)
                .features(List.of(new FeatureRef("sae-a", 9, 1.5)))
                .vector(VectorRef.of("v-1", 1.0).withValue(-2.0))
                .reason("fired")
                .latencyMs(3.25)
                .ts(1000)
                .build();

        // When
        String json = new String(codec.encode(decision), StandardCharsets.UTF_8);

        // Then
        assertThat(json).isEqualTo("{\"request_id\":\"r-1\",\"seq\":4,\"action\":\"clamp\",\"detector\":\"weapons\","
                + "\"tier\":\"high\",\"score\":0.75,\"position\":12,"
                + "\"features\":[{\"sae\":\"sae-a\",\"id\":9,\"value\":1.5}],"
                + "\"vector\":{\"id\":\"v-1\",\"coefficient\":1.0,\"value\":-2.0},"
                + "\"reason\":\"fired\",\"latency_ms\":3.25,\"ts\":1000}");
    }

    @Test
    void promptTextIsEncodedAsUtf8() {
        // Given
        PromptEvent prompt = PromptEvent.of("r", "caf\u00e9 \ud83d\ude00", 0);

        // When
        byte[] json = codec.encode(prompt);

        // Then
        assertThat(json).containsSequence("caf\u00e9 \ud83d\ude00".getBytes(StandardCharsets.UTF_8));
    }
}
