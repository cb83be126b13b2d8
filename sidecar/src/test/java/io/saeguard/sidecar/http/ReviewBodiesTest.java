package io.saeguard.sidecar.http;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.saeguard.sidecar.pipeline.InvalidRequestException;
import io.saeguard.topics.events.Review;
import io.saeguard.topics.events.Verdict;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

class ReviewBodiesTest {
    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void aVerdictAndANoteAreRead() {
        // When
        ReviewBodies.ReviewRequest r = ReviewBodies.parse(utf8("{\"verdict\": \"false_positive\", \"note\": \"a history question\"}"));

        // Then
        assertThat(r.verdict()).isEqualTo(Verdict.FALSE_POSITIVE);
        assertThat(r.note()).contains("a history question");
        assertThat(r.detector()).isEmpty();
    }

    @Test
    void theDetectorWhoseAlertItIsMayBeNamed() {
        assertThat(ReviewBodies.parse(utf8("{\"verdict\": \"true_positive\", \"detector\": \"toxicity\"}")).detector()).contains("toxicity");
    }

    @ParameterizedTest
    @ValueSource(strings = {"{\"verdict\": \"unsure\"}", "{\"verdict\": \"unsure\", \"note\": null}", "{\"verdict\": \"unsure\", \"note\": \"\"}"})
    void aMissingNullOrEmptyNoteIsNoNote(String body) {
        assertThat(ReviewBodies.parse(utf8(body)).note()).isEmpty();
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "{\"verdict\": \"maybe\"}|unknown verdict 'maybe'",
        "{\"verdict\": \"TRUE_POSITIVE\"}|unknown verdict",
        "{}|'verdict' is missing",
        "{\"verdict\": 1}|'verdict' is missing or not a string",
        "{\"verdict\": \"unsure\", \"note\": 3}|'note' must be a string",
        "{\"verdict\": \"unsure\", \"reviewer\": \"x\"}|unknown field 'reviewer'",
        "{\"verdict\": \"unsure\", \"detector\": \"\"}|'detector' must be a non-empty string",
        "{\"verdict\": \"unsure\", \"detector\": 3}|'detector' must be a non-empty string",
        "[1]|must be a JSON object",
        "not json|not JSON",
        "{\"verdict\": \"unsure\", \"verdict\": \"unsure\"}|not JSON",
    })
    void aMalformedBodyIsRefusedSayingWhy(String body, String message) {
        assertThatThrownBy(() -> ReviewBodies.parse(utf8(body))).isInstanceOf(InvalidRequestException.class).hasMessageContaining(message);
    }

    @Test
    void aNoteOverTheLimitIsRefusedAndOneAtTheLimitKept() {
        String at = "é".repeat(Review.MAX_NOTE_CHARS);

        assertThat(ReviewBodies.parse(utf8("{\"verdict\": \"unsure\", \"note\": \"" + at + "\"}")).note()).contains(at);
        assertThatThrownBy(() -> ReviewBodies.parse(utf8("{\"verdict\": \"unsure\", \"note\": \"" + at + "x\"}")))
                .isInstanceOf(InvalidRequestException.class).hasMessageContaining("at most 2000");
    }

    @ParameterizedTest
    @ValueSource(strings = {"-1", "+1", "1.0", "", "x", "1234567890123456789", "0x1"})
    void aSeqThatIsNotADecimalIntegerIsRefused(String seq) {
        assertThatThrownBy(() -> ReviewBodies.seq(seq)).isInstanceOf(InvalidRequestException.class).hasMessageContaining("seq");
    }

    @Test
    void aSeqIsReadAsDecimal() {
        assertThat(ReviewBodies.seq("007")).isEqualTo(7);
    }

    @Test
    void aNoteWithMarkupComesBackVerbatimAsAJsonString() throws Exception {
        // Given
        String note = "<script>alert(1)</script> & \"quotes\"";
        Review review = new Review("r", 1, Verdict.TRUE_POSITIVE, "d", "alice", Optional.of(note), 5);

        // When
        String json = ReviewBodies.review(review);

        // Then
        assertThat(new ObjectMapper().readTree(json).path("note").textValue()).isEqualTo(note);
    }

    @Test
    void aRequestIdWithAControlCharacterOrOverTheLimitIsRefused() {
        assertThat(ReviewBodies.requestId("req/7f3a é")).isEqualTo("req/7f3a é");
        assertThatThrownBy(() -> ReviewBodies.requestId("req\u0001")).isInstanceOf(InvalidRequestException.class)
                .hasMessageContaining("control character");
        assertThatThrownBy(() -> ReviewBodies.requestId("r".repeat(ReviewBodies.MAX_REQUEST_ID_CHARS + 1)))
                .isInstanceOf(InvalidRequestException.class).hasMessageContaining("at most");
        assertThatThrownBy(() -> ReviewBodies.requestId("")).isInstanceOf(InvalidRequestException.class).hasMessageContaining("empty");
    }
}
