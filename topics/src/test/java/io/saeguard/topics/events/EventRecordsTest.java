package io.saeguard.topics.events;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatIllegalArgumentException;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class EventRecordsTest {
    private static final FeatureRef F1 = new FeatureRef("sae-a", 10, 3.0);
    private static final FeatureRef F2 = new FeatureRef("sae-a", 20, 1.0);

    private static Decision flagged() {
        return Decision.builder("r-1", 2, Action.FLAG, 40).detector("weapons").score(0.8).features(List.of(F1, F2)).build();
    }

    @Test
    void alertForADecisionStartsWithItsFeaturesUnlabelled() {
        // Given
        Decision decision = flagged();

        // When
        Alert alert = Alert.forDecision(decision).build();

        // Then
        assertThat(alert.features()).containsExactly(AlertFeature.of(F1), AlertFeature.of(F2));
        assertThat(alert.detector()).isEqualTo("weapons");
        assertThat(alert.score()).isEqualTo(0.8);
        assertThat(alert.positions()).isEmpty();
        assertThat(alert.excerpt()).isEmpty();
    }

    @Test
    void alertLabelsAnnotateTheDecisionsFeaturesInOrder() {
        // Given
        Decision decision = flagged();

        // When
        Alert alert = Alert.forDecision(decision)
                .labels(ref -> AlertFeature.of(ref).withLabel("feature " + ref.id()))
                .build();

        // Then
        assertThat(alert.features()).extracting(f -> f.label().orElseThrow()).containsExactly("feature 10", "feature 20");
        assertThat(alert.features()).extracting(AlertFeature::ref).containsExactly(F1, F2);
    }

    @Test
    void alertRejectsFeaturesThatAreNotTheDecisions() {
        // Given
        Decision decision = flagged();

        // When / Then
        assertThatIllegalArgumentException()
                .isThrownBy(() -> Alert.forDecision(decision)
                        .labels(ref -> AlertFeature.of(new FeatureRef("sae-b", ref.id(), ref.value())))
                        .build())
                .withMessageContaining("alert features must be the decision's features");
    }

    @Test
    void alertRequiresADetector() {
        // Given
        Decision decision = Decision.builder("r-1", 0, Action.ALLOW, 0).score(0.1).build();

        // When / Then
        assertThatIllegalArgumentException()
                .isThrownBy(() -> Alert.forDecision(decision).build())
                .withMessageContaining("detector");
    }

    @Test
    void alertRequiresAScore() {
        // Given
        Decision decision = Decision.builder("r-1", 0, Action.FLAG, 0).detector("d").build();

        // When / Then
        assertThatIllegalArgumentException()
                .isThrownBy(() -> Alert.forDecision(decision).build())
                .withMessageContaining("score");
    }

    @Test
    void decisionKeepsItsOwnCopyOfTheFeatureList() {
        // Given
        List<FeatureRef> features = new ArrayList<>(List.of(F1));
        Decision decision = Decision.builder("r-1", 0, Action.FLAG, 0).features(features).build();

        // When
        features.add(F2);

        // Then
        assertThat(decision.features()).containsExactly(F1);
        assertThatThrownBy(() -> decision.features().add(F2)).isInstanceOf(UnsupportedOperationException.class);
    }

    @Test
    void decisionRejectsANegativeSeq() {
        // When / Then
        assertThatIllegalArgumentException()
                .isThrownBy(() -> Decision.builder("r-1", -1, Action.ALLOW, 0).build())
                .withMessageContaining("seq");
    }

    @Test
    void decisionRejectsAnEmptyRequestId() {
        // When / Then
        assertThatIllegalArgumentException()
                .isThrownBy(() -> Decision.builder("", 0, Action.ALLOW, 0).build())
                .withMessageContaining("request_id");
    }

    @Test
    void decisionRejectsAScoreJsonCannotCarry() {
        // When / Then
        assertThatIllegalArgumentException()
                .isThrownBy(() -> Decision.builder("r-1", 0, Action.FLAG, 0).score(Double.NaN).build())
                .withMessageContaining("score");
    }

    @Test
    void featureRefRejectsANegativeId() {
        // When / Then
        assertThatIllegalArgumentException()
                .isThrownBy(() -> new FeatureRef("sae-a", -1, 0.0))
                .withMessageContaining("id");
    }

    @Test
    void promptToStringShowsTheTextLengthButNotTheText() {
        // Given
        PromptEvent prompt = PromptEvent.of("r-1", "my secret plan", 0);

        // When
        String shown = prompt.toString();

        // Then
        assertThat(shown).contains("r-1").contains("<14 chars>").doesNotContain("secret");
    }

    @Test
    void alertToStringShowsTheExcerptLengthButNotTheExcerpt() {
        // Given
        Alert alert = Alert.forDecision(flagged()).excerpt("my secret plan").build();

        // When
        String shown = alert.toString();

        // Then
        assertThat(shown).contains("<14 chars>").doesNotContain("secret");
    }

    @Test
    void anExcerptHighlightBeyondTheExcerptIsRefused() {
        // Given an excerpt of 14 characters
        Alert.Builder alert = Alert.forDecision(flagged()).excerpt("my secret plan");

        // When a highlight ends after it
        alert.highlights(List.of(new ExcerptSpan(10, 15)));

        // Then
        assertThatThrownBy(alert::build).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("[10, 15)")
                .hasMessageContaining("14 characters");
    }

    @Test
    void aHighlightWithoutAnExcerptIsRefused() {
        // When / Then
        assertThatThrownBy(() -> Alert.forDecision(flagged()).highlights(List.of(new ExcerptSpan(0, 1))).build())
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("0 characters");
    }

    @Test
    void enumsReadOnlyTheirExactLowerCaseWireNames() {
        // When / Then
        assertThat(Action.fromWireName("steer")).contains(Action.STEER);
        assertThat(Action.fromWireName("STEER")).isEqualTo(Optional.empty());
        assertThat(Action.wireNames()).isEqualTo("allow|flag|steer|clamp|block");
        assertThat(Tier.fromWireName("medium")).contains(Tier.MEDIUM);
        assertThat(Role.fromWireName("tool")).contains(Role.TOOL);
        assertThat(Phase.fromWireName("generation")).contains(Phase.GENERATION);
    }
}
