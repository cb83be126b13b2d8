package io.saeguard.detectors;

import io.saeguard.detectors.spi.DetectorConfigException;
import static org.assertj.core.api.Assertions.assertThat;

import io.saeguard.detectors.rules.DsgConfig;
import io.saeguard.detectors.rules.FeaturesConfig;
import io.saeguard.detectors.rules.FeaturesConfig.Match;
import io.saeguard.detectors.rules.ProbeConfig;
import io.saeguard.detectors.rules.ProbeWeights;
import io.saeguard.detectors.rules.RawProbeConfig;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The {@code rule:} mapping bound by Jackson to each kind's config record ({@link RuleBinding}). */
class RuleBindingTest {
    private static final String POLICY = "policy: {bands: [{min: 1.0, action: flag}]}\n";

    private static String definition(String rule) {
        return "id: d\nsae: s\nrule: " + rule + "\n" + POLICY;
    }

    private static DetectorConfigException error(String rule) {
        return Yaml.error(definition(rule));
    }

    /** One rule of each shape a kind's YAML takes, by kind; probes read w.safetensors from the test's directory. */
    private static final Map<String, List<String>> RULES = Map.of(
            "features", List.of(
                    "{kind: features, features: [{id: 3, threshold: 2.5, label: l, explanation: e}]}",
                    "{kind: features, match: all, features: [{id: 3, threshold: 2.5}, {id: 4, threshold: 1.0}]}",
                    "{kind: features, match: weighted, threshold: 1.5, features: [{id: 3, weight: -0.5}, {id: 9, weight: 2}]}"),
            "dsg", List.of(
                    "{kind: dsg, tau: 0.25, features: [7, 9]}",
                    "{kind: dsg, tau: 0.5, window: 16, features: [7, {id: 9, threshold: 0.5, label: v, explanation: e}]}"),
            "probe", List.of(
                    "{kind: probe, weights: w.safetensors}",
                    "{kind: probe, weights: w.safetensors, fire_at: 0.8}"),
            "raw-probe", List.of(
                    "{kind: raw-probe, weights: w.safetensors, fire_at: 0.7}"));

    @Test
    void everyKindsConfigIsWrittenAndBoundBackToAnEqualConfig(@TempDir Path dir) throws Exception {
        // Given
        ProbeWeights.write(dir.resolve("w.safetensors"), new float[] {1, -2, 3}, 0.25);

        for (List<String> rules : RULES.values()) {
            for (String rule : rules) {
                DetectorDefinition original = Yaml.definition(definition(rule), dir);

                // When
                DetectorDefinition reread = Yaml.definition(DetectorDefinitions.toYaml(original), dir);

                // Then
                assertThat(reread).as(rule).isEqualTo(original);
                assertThat(reread.rule()).as(rule).isEqualTo(original.rule());
            }
        }
        assertThat(new TreeSet<>(RULES.keySet())).as("a round trip for every kind on the class path")
                .containsExactlyElementsOf(List.of(DetectorKinds.names().split(", ")));
    }

    @Test
    void leftOutKeysTakeTheirDeclaredDefaults(@TempDir Path dir) throws Exception {
        // Given
        ProbeWeights.write(dir.resolve("w.safetensors"), new float[] {1}, 0);

        // When
        DetectorDefinition features = Yaml.definition(definition("{kind: features, features: [{id: 3, threshold: 2.0}]}"));
        DetectorDefinition dsg = Yaml.definition(definition("{kind: dsg, tau: 0.5, features: [{id: 9, label: v}]}"));
        DetectorDefinition probe = Yaml.definition(definition("{kind: probe, weights: w.safetensors}"), dir);
        DetectorDefinition raw = Yaml.definition(definition("{kind: raw-probe, weights: w.safetensors}"), dir);

        // Then
        assertThat(((FeaturesConfig) features.rule()).match()).isEqualTo(Match.ANY);
        assertThat(((DsgConfig) dsg.rule()).features().get(0).threshold()).isZero();
        assertThat(((ProbeConfig) probe.rule()).fireAt()).isEqualTo(0.5);
        assertThat(((ProbeConfig) probe.rule()).weights()).isEqualTo(new ProbeWeights(new float[] {1}, 0));
        assertThat(((RawProbeConfig) raw.rule()).fireAt()).isEqualTo(0.5);
    }

    @Test
    void unknownRuleKeyListsTheKeysOfTheKindWithKind() {
        DetectorConfigException e = error("{kind: dsg, tua: 0.25, features: [7]}");

        assertThat(e.key()).isEqualTo("rule.tua");
        assertThat(e.getMessage()).contains("unknown key 'tua' (allowed here: features, kind, tau, window)");
        assertThat(e.fix()).isEqualTo("remove it or correct its spelling");
    }

    @Test
    void camelCaseRuleKeyGetsTheSnakeCaseSpellingAsFix() {
        DetectorConfigException e = error("{kind: probe, weights: w.safetensors, fireAt: 0.5}");

        assertThat(e.key()).isEqualTo("rule.fireAt");
        assertThat(e.fix()).isEqualTo("write 'fire_at' instead of 'fireAt'");
    }

    @Test
    void unknownKeyInADsgFeatureMappingIsNamedWithItsIndex() {
        DetectorConfigException e = error("{kind: dsg, tau: 0.25, features: [7, {id: 9, treshold: 0.5}]}");

        assertThat(e.key()).isEqualTo("rule.features[1].treshold");
        assertThat(e.getMessage()).contains("allowed here: explanation, id, label, threshold");
    }

    @Test
    void missingRequiredKeyIsNamedWithWhatItHoldsAndAnExample() {
        DetectorConfigException e = error("{kind: dsg, features: [7]}");

        assertThat(e.key()).isEqualTo("rule.tau");
        assertThat(e.getMessage()).contains("missing key 'tau' (a number)");
        assertThat(e.fix()).isEqualTo("add 'tau: 1.0'");
    }

    @Test
    void missingFeatureIdIsNamedWithTheFeaturesIndex() {
        DetectorConfigException e = error("{kind: features, features: [{threshold: 2.0}]}");

        assertThat(e.key()).isEqualTo("rule.features[0].id");
        assertThat(e.getMessage()).contains("missing key 'id' (an integer)");
    }

    @Test
    void fractionalFeatureIdIsNotTruncated() {
        DetectorConfigException e = error("{kind: features, features: [{id: 1.5, threshold: 2.0}]}");

        assertThat(e.key()).isEqualTo("rule.features[0].id");
        assertThat(e.getMessage()).contains("expected an integer, found number 1.5");
        assertThat(e.fix()).contains("no decimal point");
    }

    @Test
    void quotedTauIsRejectedAsText() {
        DetectorConfigException e = error("{kind: dsg, tau: '0.25', features: [7]}");

        assertThat(e.key()).isEqualTo("rule.tau");
        assertThat(e.getMessage()).contains("expected a number, found text '0.25'");
    }

    @Test
    void infiniteThresholdIsRejected() {
        DetectorConfigException e = error("{kind: features, features: [{id: 3, threshold: 1e400}]}");

        assertThat(e.key()).isEqualTo("rule.features[0].threshold");
        assertThat(e.getMessage()).contains("expected a finite number");
    }

    @Test
    void numericLabelIsNotText() {
        DetectorConfigException e = error("{kind: features, features: [{id: 3, threshold: 2.0, label: 12}]}");

        assertThat(e.key()).isEqualTo("rule.features[0].label");
        assertThat(e.getMessage()).contains("expected non-empty text, found number 12");
    }

    @Test
    void matchInTheWrongCaseGetsTheLowerCaseAsFix() {
        DetectorConfigException e = error("{kind: features, match: Any, features: [{id: 3, threshold: 2.0}]}");

        assertThat(e.key()).isEqualTo("rule.match");
        assertThat(e.getMessage()).contains("'Any' is not one of any|all|weighted");
        assertThat(e.fix()).isEqualTo("write 'any' in lower case");
    }

    @Test
    void matchByNumberIsRejected() {
        DetectorConfigException e = error("{kind: features, match: 1, features: [{id: 3, threshold: 2.0}]}");

        assertThat(e.key()).isEqualTo("rule.match");
        assertThat(e.getMessage()).contains("expected one of any|all|weighted, found number 1");
    }

    @Test
    void featuresThatAreNotAListAreRejected() {
        DetectorConfigException e = error("{kind: dsg, tau: 0.5, features: 7}");

        assertThat(e.key()).isEqualTo("rule.features");
        assertThat(e.getMessage()).contains("expected a list, found number 7");
    }

    @Test
    void aDsgFeatureMustBeAnIdOrAMapping() {
        DetectorConfigException e = error("{kind: dsg, tau: 0.5, features: [7, seven]}");

        assertThat(e.key()).isEqualTo("rule.features[1]");
        assertThat(e.getMessage()).contains("expected an integer or a mapping (keys: id, threshold, label, explanation), found text 'seven'");
    }

    @Test
    void aFeaturesRuleFeatureMustBeAMapping() {
        DetectorConfigException e = error("{kind: features, features: [3]}");

        assertThat(e.key()).isEqualTo("rule.features[0]");
        assertThat(e.getMessage()).contains("expected a mapping (keys: id, threshold, weight, label, explanation), found number 3");
        assertThat(e.fix()).contains("'- id: ...'");
    }

    @Test
    void anEmptyListEntryIsNamed() {
        DetectorConfigException e = error("{kind: dsg, tau: 0.5, features: [7, ~]}");

        assertThat(e.key()).isEqualTo("rule.features[1]");
        assertThat(e.getMessage()).contains("an empty entry");
    }

    @Test
    void negativeBareDsgIdIsNamedAtItsEntry() {
        DetectorConfigException e = error("{kind: dsg, tau: 0.5, features: [7, -1]}");

        assertThat(e.key()).isEqualTo("rule.features[1]");
        assertThat(e.getMessage()).contains("feature ids are >= 0, found -1");
    }

    @Test
    void negativeDsgThresholdIsNamedInItsMapping() {
        DetectorConfigException e = error("{kind: dsg, tau: 0.5, features: [{id: 7, threshold: -1}]}");

        assertThat(e.key()).isEqualTo("rule.features[0].threshold");
        assertThat(e.getMessage()).contains("must be a finite number >= 0, found -1.0");
    }

    @Test
    void dsgFeatureListedTwiceIsNamedAtItsSecondEntry() {
        DetectorConfigException e = error("{kind: dsg, tau: 0.5, features: [7, {id: 7, label: again}]}");

        assertThat(e.key()).isEqualTo("rule.features[1]");
        assertThat(e.getMessage()).contains("feature 7 is listed twice");
    }

    @Test
    void emptyDsgFeatureListIsRejected() {
        DetectorConfigException e = error("{kind: dsg, tau: 0.5, features: []}");

        assertThat(e.key()).isEqualTo("rule.features");
        assertThat(e.fix()).contains("features: [101, 2057]");
    }

    @Test
    void dsgWindowBelowOneIsRejected() {
        DetectorConfigException e = error("{kind: dsg, tau: 0.5, window: 0, features: [7]}");

        assertThat(e.key()).isEqualTo("rule.window");
        assertThat(e.getMessage()).contains("must be >= 1, found 0");
    }

    @Test
    void weightOnAnAnyFeatureIsRejected() {
        DetectorConfigException e = error("{kind: features, features: [{id: 3, threshold: 2.0}, {id: 4, weight: 1.0}]}");

        assertThat(e.key()).isEqualTo("rule.features[1].weight");
        assertThat(e.fix()).isEqualTo("remove 'weight', or set 'match: weighted'");
    }

    @Test
    void weightedMatchingNeedsARuleThreshold() {
        DetectorConfigException e = error("{kind: features, match: weighted, features: [{id: 3, weight: 1.0}]}");

        assertThat(e.key()).isEqualTo("rule.threshold");
        assertThat(e.fix()).isEqualTo("add 'threshold: 1.0' under 'rule'");
    }

    @Test
    void weightedFeatureWithoutWeightIsNamed() {
        DetectorConfigException e = error("{kind: features, match: weighted, threshold: 1.0, features: [{id: 3, weight: 1.0}, {id: 4}]}");

        assertThat(e.key()).isEqualTo("rule.features[1].weight");
        assertThat(e.getMessage()).contains("missing weight for weighted matching");
    }

    @Test
    void featureListedTwiceIsNamedAtItsId() {
        DetectorConfigException e = error("{kind: features, features: [{id: 3, threshold: 2.0}, {id: 3, threshold: 4.0}]}");

        assertThat(e.key()).isEqualTo("rule.features[1].id");
        assertThat(e.getMessage()).contains("feature 3 is listed twice");
    }

    @Test
    void probeFireAtMustBeAProbability(@TempDir Path dir) throws Exception {
        // Given
        ProbeWeights.write(dir.resolve("w.safetensors"), new float[] {1}, 0);

        // When
        DetectorConfigException e = Yaml.error(definition("{kind: probe, weights: w.safetensors, fire_at: 1.5}"));

        // Then: the range is checked while binding, before the weights file is looked for
        assertThat(e.key()).isEqualTo("rule.fire_at");
        assertThat(e.getMessage()).contains("strictly between 0 and 1");
    }
}
