package io.saeguard.detectors;

import io.saeguard.detectors.spi.DetectorConfigException;
import io.saeguard.detectors.spi.Aggregation;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.saeguard.detectors.Policy.Band;
import io.saeguard.detectors.Policy.FailMode;
import io.saeguard.detectors.rules.DsgConfig;
import io.saeguard.detectors.rules.FeaturesConfig;
import io.saeguard.detectors.rules.FeaturesConfig.Feature;
import io.saeguard.detectors.rules.FeaturesConfig.Match;
import io.saeguard.topics.events.Action;
import io.saeguard.topics.events.Tier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalInt;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DetectorDefinitionsTest {
    static final String MINIMAL = """
            id: toxicity
            sae: gemma-2b-l20-16k          # an SAE id from the sidecar config
            rule:
              kind: features
              match: any
              features:
                - id: 6631
                  threshold: 5.0
                  label: profanity and slurs
            aggregate: max
            policy:
              alert_at: 1.0
              bands:
                - min: 1.0
                  action: flag
                - min: 2.0
                  action: block
            """;

    @Test
    void theMinimalFileFromTheIssueParsesAsWritten() {
        // When
        DetectorDefinition d = Yaml.definition(MINIMAL);

        // Then
        assertThat(d.id()).isEqualTo("toxicity");
        assertThat(d.sae()).isEqualTo("gemma-2b-l20-16k");
        assertThat(d.rule()).isEqualTo(new FeaturesConfig(Match.ANY,
                List.of(Feature.withThreshold(6631, 5.0).withLabel("profanity and slurs")), OptionalDouble.empty()));
        assertThat(d.aggregate()).isEqualTo(Aggregation.max());
        assertThat(d.specialTokens()).isEqualTo(SpecialTokens.DEFAULT);
        assertThat(d.policy()).isEqualTo(new Policy(OptionalDouble.of(1.0),
                List.of(Band.of(1.0, Action.FLAG), Band.of(2.0, Action.BLOCK)), OptionalInt.empty(), FailMode.OPEN, OptionalLong.empty()));
    }

    @Test
    void theMinimalFileFromTheIssueRunsAsWritten() {
        // Given: the minimal file in an engine; request position 0 is BOS and never counts
        DetectorEngine engine = DetectorEngine.create(List.of(Yaml.definition(MINIMAL)), DecoderDirections.none(),
                new StateLimits(java.time.Duration.ofMinutes(1), 10));
        float[][] rows = new float[3][16384];
        rows[0][6631] = 50f; // BOS: ignored
        rows[1][6631] = 6f;  // 6 / 5 = 1.2: flag
        float[][] louder = new float[1][16384];
        louder[0][6631] = 11f; // 11 / 5 = 2.2: block

        // When
        ChunkOutcome first = engine.evaluate(new Chunk("r", "gemma-2b-l20-16k", 0, TestChunks.codes("gemma-2b-l20-16k", 16384, rows),
                java.util.Optional.empty(), 0, new float[3], java.util.Optional.empty(), false), 0);
        ChunkOutcome second = engine.evaluate(new Chunk("r", "gemma-2b-l20-16k", 3, TestChunks.codes("gemma-2b-l20-16k", 16384, louder),
                java.util.Optional.empty(), 0, new float[1], java.util.Optional.empty(), true), 0);

        // Then: max aggregation over the request, bands flag at 1 and block at 2, an alert at each escalation
        assertThat(first.decision().action()).isEqualTo(Action.FLAG);
        assertThat(first.decision().score()).hasValueCloseTo(1.2, org.assertj.core.data.Offset.offset(1e-6));
        assertThat(first.alerts()).singleElement().satisfies(a -> {
            assertThat(a.features()).anySatisfy(f -> assertThat(f.label()).contains("profanity and slurs"));
            assertThat(a.positions()).containsExactly(1L);
        });
        assertThat(second.decision().action()).isEqualTo(Action.BLOCK);
        assertThat(second.decision().score()).hasValueCloseTo(2.2, org.assertj.core.data.Offset.offset(1e-6));
        assertThat(second.alerts()).hasSize(1);
    }

    @Test
    void everyOptionalKeyParses() {
        // Given
        String yaml = """
                id: full.example_1
                sae: s
                description: all keys
                rule:
                  kind: features
                  match: weighted
                  threshold: 3.0
                  features:
                    - {id: 1, weight: 0.5, label: one, explanation: the first}
                    - {id: 2, weight: -1.5}
                aggregate: fraction
                window: 16
                special_tokens:
                  ids: [0, 1, 2]
                  skip_first: false
                policy:
                  alert_at: 0.5
                  vector_feature: 2
                  fail: closed
                  deadline_ms: 40
                  bands:
                    - {min: 0.2, action: flag}
                    - {min: 0.4, action: steer, tier: medium, coefficient: -8.0}
                    - {min: 0.6, action: clamp, value: -0.5}
                    - {min: 0.9, action: block}
                """;

        // When
        DetectorDefinition d = Yaml.definition(yaml);

        // Then
        assertThat(d.description()).contains("all keys");
        assertThat(d.rule()).isEqualTo(new FeaturesConfig(Match.WEIGHTED, List.of(
                Feature.withWeight(1, 0.5).withLabel("one").withExplanation("the first"), Feature.withWeight(2, -1.5)),
                OptionalDouble.of(3.0)));
        assertThat(d.aggregate()).isEqualTo(Aggregation.fraction(16));
        assertThat(d.specialTokens()).isEqualTo(new SpecialTokens(List.of(0, 1, 2), false));
        assertThat(d.policy()).isEqualTo(new Policy(OptionalDouble.of(0.5), List.of(
                Band.of(0.2, Action.FLAG), Band.steer(0.4, Tier.MEDIUM, -8.0), Band.clamp(0.6, -0.5), Band.of(0.9, Action.BLOCK)),
                OptionalInt.of(2), FailMode.CLOSED, OptionalLong.of(40)));
    }

    @Test
    void toYamlWritesWhatParseReadsBack() {
        // Given
        DetectorDefinition original = Yaml.definition(MINIMAL.replace("aggregate: max", """
                aggregate: window
                window: 8
                special_tokens: {ids: [1], skip_first: true}""").replace("      action: flag",
                "      action: steer\n      tier: low\n      coefficient: -4.5"));

        // When
        String yaml = DetectorDefinitions.toYaml(original);

        // Then
        assertThat(Yaml.definition(yaml)).isEqualTo(original);
        assertThat(yaml).contains("kind: features").contains("tier: low").doesNotContain("---");
    }

    @Test
    void dsgDefinitionsRoundTripInBothFeatureForms() {
        // Given
        DetectorDefinition plain = Yaml.definition("""
                id: bio
                sae: s
                rule: {kind: dsg, tau: 0.25, window: 32, features: [7, 9, 11]}
                policy: {bands: [{min: 1.0, action: block}]}
                """);
        DetectorDefinition annotated = Yaml.definition("""
                id: bio2
                sae: s
                rule:
                  kind: dsg
                  tau: 0.5
                  features:
                    - 7
                    - {id: 9, threshold: 0.5, label: viruses}
                policy: {bands: [{min: 1.0, action: flag}]}
                """);

        // Then
        assertThat(plain.aggregate()).isEqualTo(Aggregation.fraction(32));
        assertThat(annotated.aggregate()).isEqualTo(Aggregation.fraction());
        assertThat(((DsgConfig) annotated.rule()).features()).containsExactly(DsgConfig.Feature.of(7),
                new DsgConfig.Feature(9, 0.5, Optional.of("viruses"), Optional.empty()));
        assertThat(Yaml.definition(DetectorDefinitions.toYaml(plain))).isEqualTo(plain);
        assertThat(Yaml.definition(DetectorDefinitions.toYaml(annotated))).isEqualTo(annotated);
    }

    @Test
    void ruleConfigsAreWrittenBackByJacksonInTheFormTheirKindsParse(@TempDir Path dir) throws Exception {
        // Given
        io.saeguard.detectors.rules.ProbeWeights.write(dir.resolve("w.safetensors"), new float[4], 0);
        String policy = "policy: {bands: [{min: 1.0, action: flag}]}\n";

        // When
        java.util.function.Function<String, Object> rule = r -> DetectorKinds.write(Yaml.definition("id: d\nsae: s\nrule: " + r + "\n"
                + (r.contains("dsg") ? "" : "aggregate: max\n") + policy, dir).rule());

        // Then
        assertThat(rule.apply("{kind: features, features: [{id: 3, threshold: 2.5, label: l}]}")).asString()
                .isEqualTo("{match=any, features=[{id=3, threshold=2.5, label=l}]}");
        assertThat(rule.apply("{kind: features, match: weighted, threshold: 1.5, features: [{id: 3, weight: -0.5, explanation: e}]}"))
                .asString().isEqualTo("{match=weighted, threshold=1.5, features=[{id=3, weight=-0.5, explanation=e}]}");
        assertThat(rule.apply("{kind: dsg, tau: 0.25, window: 32, features: [7, 9]}")).asString()
                .isEqualTo("{tau=0.25, window=32, features=[7, 9]}");
        assertThat(rule.apply("{kind: dsg, tau: 0.5, features: [7, {id: 9, threshold: 0.5, label: v}]}")).asString()
                .as("one annotated feature: all as mappings, threshold 0 left out").isEqualTo("{tau=0.5, features=[{id=7}, {id=9, threshold=0.5, label=v}]}");
        assertThat(rule.apply("{kind: probe, weights: w.safetensors}")).asString().isEqualTo("{weights=w.safetensors, fire_at=0.5}");
        assertThat(rule.apply("{kind: raw-probe, weights: w.safetensors, fire_at: 0.7}")).asString()
                .isEqualTo("{weights=w.safetensors, fire_at=0.7}");
        assertThat(rule.apply("{kind: probe, weights: w.safetensors, token_score: logit}")).asString()
                .isEqualTo("{weights=w.safetensors, fire_at=0.5, token_score=logit}");
    }

    @Test
    void unknownTopLevelKeyNamesFileKeyAndFix() {
        // When
        DetectorConfigException e = Yaml.error(MINIMAL + "agregate: max\n");

        // Then
        assertThat(e.file()).isEqualTo("bad.yaml");
        assertThat(e.key()).isEqualTo("agregate");
        assertThat(e.getMessage()).startsWith("bad.yaml: agregate: unknown key 'agregate'").contains("allowed here:").contains("Fix:");
    }

    @Test
    void unknownKeyInsideAFeatureIsRejectedWithItsPath() {
        DetectorConfigException e = Yaml.error(MINIMAL.replace("label: profanity", "lable: profanity"));

        assertThat(e.key()).isEqualTo("rule.features[0].lable");
        assertThat(e.fix()).isNotBlank();
    }

    @Test
    void misspelledKeyGetsTheRightSpellingAsFix() {
        DetectorConfigException e = Yaml.error(MINIMAL.replace("alert_at", "alertAt"));

        assertThat(e.key()).isEqualTo("policy.alertAt");
        assertThat(e.fix()).isEqualTo("write 'alert_at' instead of 'alertAt'");
    }

    @Test
    void unknownRuleKindListsTheKnownKinds() {
        DetectorConfigException e = Yaml.error(MINIMAL.replace("kind: features", "kind: regex"));

        assertThat(e.key()).isEqualTo("rule.kind");
        assertThat(e.fix()).contains("dsg").contains("features").contains("probe").contains("raw-probe");
    }

    @Test
    void missingThresholdIsNamedWithItsFeature() {
        DetectorConfigException e = Yaml.error(MINIMAL.replace("      threshold: 5.0\n", ""));

        assertThat(e.key()).isEqualTo("rule.features[0].threshold");
        assertThat(e.getMessage()).contains("missing threshold");
    }

    @Test
    void quotedNumberIsRejected() {
        DetectorConfigException e = Yaml.error(MINIMAL.replace("threshold: 5.0", "threshold: \"5.0\""));

        assertThat(e.key()).isEqualTo("rule.features[0].threshold");
        assertThat(e.getMessage()).contains("expected a number, found text '5.0'");
    }

    @Test
    void nonPositiveThresholdIsRejected() {
        DetectorConfigException e = Yaml.error(MINIMAL.replace("threshold: 5.0", "threshold: 0"));

        assertThat(e.key()).isEqualTo("rule.features[0].threshold");
    }

    @Test
    void bandsOutOfOrderAreRejected() {
        DetectorConfigException e = Yaml.error(MINIMAL.replace("min: 2.0", "min: 0.5"));

        assertThat(e.key()).isEqualTo("policy.bands[1].min");
        assertThat(e.fix()).isEqualTo("order the bands by min ascending, without duplicates");
    }

    @Test
    void unknownActionListsTheActions() {
        DetectorConfigException e = Yaml.error(MINIMAL.replace("action: block", "action: Block"));

        assertThat(e.key()).isEqualTo("policy.bands[1].action");
        assertThat(e.fix()).isEqualTo("write 'block' in lower case");
    }

    @Test
    void anEscalateBandParsesAsAFlagWithItsTimeoutAndFallbackAndWritesBackAsEscalate() {
        // Given
        String yaml = MINIMAL.replace("      action: flag", "      action: escalate\n      judge_timeout_ms: 1500\n      fallback: block");

        // When
        DetectorDefinition d = Yaml.definition(yaml);
        String written = DetectorDefinitions.toYaml(d);

        // Then
        assertThat(d.policy().bands().get(0)).isEqualTo(Band.escalate(1.0, 1500, Action.BLOCK));
        assertThat(d.policy().bands().get(0).action()).isEqualTo(Action.FLAG);
        assertThat(written).contains("action: escalate").contains("judge_timeout_ms: 1500").contains("fallback: block");
        assertThat(Yaml.definition(written)).isEqualTo(d);
    }

    @Test
    void anEscalateBandNeedsAJudgeTimeout() {
        DetectorConfigException e = Yaml.error(MINIMAL.replace("      action: flag", "      action: escalate\n      fallback: block"));

        assertThat(e.key()).isEqualTo("policy.bands[0].judge_timeout_ms");
        assertThat(e.fix()).isEqualTo("add 'judge_timeout_ms: 2000'");
    }

    @Test
    void anEscalateBandsTimeoutMustBePositive() {
        DetectorConfigException e = Yaml.error(MINIMAL.replace("      action: flag",
                "      action: escalate\n      judge_timeout_ms: 0\n      fallback: block"));

        assertThat(e.key()).isEqualTo("policy.bands[0].judge_timeout_ms");
        assertThat(e.getMessage()).contains("must be > 0");
    }

    @Test
    void anEscalateBandsFallbackCannotSteer() {
        DetectorConfigException e = Yaml.error(MINIMAL.replace("      action: flag",
                "      action: escalate\n      judge_timeout_ms: 100\n      fallback: steer"));

        assertThat(e.key()).isEqualTo("policy.bands[0].fallback");
    }

    @Test
    void aFallbackOnABandThatDoesNotEscalateIsRejected() {
        DetectorConfigException e = Yaml.error(MINIMAL.replace("      action: flag", "      action: flag\n      fallback: block"));

        assertThat(e.key()).isEqualTo("policy.bands[0].fallback");
        assertThat(e.fix()).isEqualTo("remove it, or set 'action: escalate'");
    }

    @Test
    void steerBandNeedsATier() {
        DetectorConfigException e = Yaml.error(MINIMAL.replace("action: flag", "action: steer\n      coefficient: -2"));

        assertThat(e.key()).isEqualTo("policy.bands[0].tier");
        assertThat(e.fix()).contains("low").contains("medium").contains("high");
    }

    @Test
    void steerBandNeedsACoefficient() {
        DetectorConfigException e = Yaml.error(MINIMAL.replace("action: flag", "action: steer\n      tier: low"));

        assertThat(e.key()).isEqualTo("policy.bands[0].coefficient");
    }

    @Test
    void clampBandNeedsAValue() {
        DetectorConfigException e = Yaml.error(MINIMAL.replace("action: flag", "action: clamp"));

        assertThat(e.key()).isEqualTo("policy.bands[0].value");
        assertThat(e.getMessage()).contains("mean activation norm");
    }

    @Test
    void tierOnANonSteerBandIsRejected() {
        DetectorConfigException e = Yaml.error(MINIMAL.replace("action: block", "action: block\n      tier: high"));

        assertThat(e.key()).isEqualTo("policy.bands[1].tier");
    }

    @Test
    void windowAggregationNeedsAWindow() {
        DetectorConfigException e = Yaml.error(MINIMAL.replace("aggregate: max", "aggregate: window"));

        assertThat(e.key()).isEqualTo("window");
        assertThat(e.fix()).contains("window: 32");
    }

    @Test
    void windowWithMaxAggregationIsRejected() {
        DetectorConfigException e = Yaml.error(MINIMAL.replace("aggregate: max", "aggregate: max\nwindow: 4"));

        assertThat(e.key()).isEqualTo("window");
    }

    @Test
    void dsgRejectsATopLevelAggregateAndSaysWhereTheWindowGoes() {
        DetectorConfigException e = Yaml.error("""
                id: bio
                sae: s
                rule: {kind: dsg, tau: 0.25, features: [7]}
                aggregate: window
                window: 32
                policy: {bands: [{min: 1.0, action: block}]}
                """);

        assertThat(e.key()).isEqualTo("aggregate");
        assertThat(e.fix()).contains("under 'rule'");
    }

    @Test
    void dsgTauMustBeAFraction() {
        DetectorConfigException e = Yaml.error("""
                id: bio
                sae: s
                rule: {kind: dsg, tau: 1.5, features: [7]}
                policy: {bands: []}
                """);

        assertThat(e.key()).isEqualTo("rule.tau");
    }

    @Test
    void invalidIdIsRejected() {
        DetectorConfigException e = Yaml.error(MINIMAL.replace("id: toxicity", "id: toxic ity/1"));

        assertThat(e.key()).isEqualTo("id");
    }

    @Test
    void missingPolicyIsRejected() {
        DetectorConfigException e = Yaml.error(MINIMAL.substring(0, MINIMAL.indexOf("policy:")));

        assertThat(e.key()).isEqualTo("policy");
        assertThat(e.getMessage()).contains("missing mapping");
    }

    @Test
    void yamlSyntaxErrorNamesTheLine() {
        DetectorConfigException e = Yaml.error("id: x\nsae: [unclosed\n");

        assertThat(e.getMessage()).startsWith("bad.yaml: not valid YAML").contains("line");
    }

    @Test
    void duplicateKeysAreRejected() {
        DetectorConfigException e = Yaml.error(MINIMAL + "id: again\n");

        assertThat(e.getMessage()).contains("not valid YAML").contains("Duplicate field 'id'");
    }

    @Test
    void probeSteerBandWithoutVectorFeatureIsRejected(@TempDir Path dir) throws Exception {
        // Given
        io.saeguard.detectors.rules.ProbeWeights.write(dir.resolve("w.safetensors"), new float[4], 0);
        String yaml = """
                id: p
                sae: s
                rule: {kind: probe, weights: w.safetensors}
                policy: {bands: [{min: 0.9, action: steer, tier: low, coefficient: -1.0}]}
                """;

        // When / Then
        assertThatThrownBy(() -> DetectorDefinitions.parse(yaml.getBytes(StandardCharsets.UTF_8), "p.yaml", dir))
                .isInstanceOfSatisfying(DetectorConfigException.class, e -> {
                    assertThat(e.key()).isEqualTo("policy.vector_feature");
                    assertThat(e.fix()).contains("vector_feature: N");
                });
    }

    @Test
    void missingProbeWeightsFileIsNamed() {
        DetectorConfigException e = Yaml.error("""
                id: p
                sae: s
                rule: {kind: probe, weights: nowhere.safetensors}
                policy: {bands: []}
                """);

        assertThat(e.key()).isEqualTo("rule.weights");
        assertThat(e.getMessage()).contains("'nowhere.safetensors' not found");
    }

    @Test
    void probeWeightsWithoutBiasAreRejected(@TempDir Path dir) throws Exception {
        // Given
        new io.saeguard.topics.safetensors.SafetensorsWriter().addF32("weight", new long[] {3}, new float[3])
                .writeTo(dir.resolve("w.safetensors"));
        Path file = dir.resolve("p.yaml");
        Files.writeString(file, "id: p\nsae: s\nrule: {kind: probe, weights: w.safetensors}\npolicy: {}\n");

        // When / Then
        assertThatThrownBy(() -> DetectorDefinitions.load(file))
                .isInstanceOfSatisfying(DetectorConfigException.class, e -> {
                    assertThat(e.file()).isEqualTo(file.toString());
                    assertThat(e.getMessage()).contains("no tensor 'bias'");
                    assertThat(e.fix()).contains("'bias' [1]");
                });
    }

    @Test
    void loadResolvesProbeWeightsAgainstTheFilesDirectory(@TempDir Path dir) throws Exception {
        // Given
        Path sub = Files.createDirectories(dir.resolve("pack"));
        io.saeguard.detectors.rules.ProbeWeights.write(sub.resolve("w.safetensors"), new float[] {1, 2, 3}, 0.5);
        Path file = sub.resolve("p.yaml");
        Files.writeString(file, "id: p\nsae: s\nrule: {kind: raw-probe, weights: w.safetensors, fire_at: 0.7}\npolicy: {}\n");

        // When
        DetectorDefinition d = DetectorDefinitions.load(file);

        // Then
        assertThat(d.rule().kind()).isEqualTo("raw-probe");
        assertThat(Yaml.definition(DetectorDefinitions.toYaml(d), sub)).isEqualTo(d);
    }

    @Test
    void loadAllRejectsDuplicateIdsNamingBothFiles(@TempDir Path dir) throws Exception {
        // Given
        Path a = Files.writeString(dir.resolve("a.yaml"), MINIMAL);
        Path b = Files.writeString(dir.resolve("b.yaml"), MINIMAL);

        // When / Then
        assertThatThrownBy(() -> DetectorDefinitions.loadAll(List.of(a, b)))
                .isInstanceOfSatisfying(DetectorConfigException.class, e -> {
                    assertThat(e.file()).isEqualTo(b.toString());
                    assertThat(e.key()).isEqualTo("id");
                    assertThat(e.getMessage()).contains("already defined in " + a);
                });
    }

    @Test
    void unreadableFileIsAConfigError(@TempDir Path dir) {
        assertThatThrownBy(() -> DetectorDefinitions.load(dir.resolve("missing.yaml")))
                .isInstanceOf(DetectorConfigException.class).hasMessageContaining("cannot read the file");
    }

    @Test
    void anUnverifiedPackSaysSoAndTheMarkSurvivesTheRoundTrip() throws Exception {
        // Given a definition marked unverified, and the same without the mark
        String yaml = """
                id: guess
                sae: s
                status: unverified
                rule:
                  kind: features
                  features:
                    - id: 3
                      threshold: 1.0
                policy:
                  bands:
                    - min: 1.0
                      action: flag
                """;
        DetectorDefinition marked = DetectorDefinitions.parse(yaml.getBytes(java.nio.charset.StandardCharsets.UTF_8), "guess.yaml");
        DetectorDefinition plain = DetectorDefinitions.parse(yaml.replace("status: unverified\n", "")
                .getBytes(java.nio.charset.StandardCharsets.UTF_8), "plain.yaml");

        // Then
        assertThat(marked.status()).isEqualTo(DetectorDefinition.Status.UNVERIFIED);
        assertThat(plain.status()).isEqualTo(DetectorDefinition.Status.VERIFIED);
        assertThat(DetectorDefinitions.toYaml(marked)).contains("status: unverified");
        assertThat(DetectorDefinitions.toYaml(plain)).doesNotContain("status");
        assertThat(DetectorDefinitions.parse(DetectorDefinitions.toYaml(marked).getBytes(java.nio.charset.StandardCharsets.UTF_8), "again.yaml"))
                .isEqualTo(marked);
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> DetectorDefinitions.parse(yaml.replace("unverified", "maybe")
                .getBytes(java.nio.charset.StandardCharsets.UTF_8), "bad.yaml")).hasMessageContaining("status");
    }

    @Test
    void aShadowDetectorSaysSoAndTheModeSurvivesTheRoundTrip() throws Exception {
        // Given a definition in shadow mode, and the same without the key
        String yaml = """
                id: trial
                sae: s
                mode: shadow
                rule:
                  kind: features
                  features:
                    - id: 3
                      threshold: 1.0
                policy:
                  bands:
                    - min: 1.0
                      action: block
                """;
        DetectorDefinition shadow = DetectorDefinitions.parse(yaml.getBytes(java.nio.charset.StandardCharsets.UTF_8), "trial.yaml");
        DetectorDefinition plain = DetectorDefinitions.parse(yaml.replace("mode: shadow\n", "")
                .getBytes(java.nio.charset.StandardCharsets.UTF_8), "plain.yaml");

        // Then
        assertThat(shadow.mode()).isEqualTo(DetectorDefinition.Mode.SHADOW);
        assertThat(plain.mode()).isEqualTo(DetectorDefinition.Mode.LIVE);
        assertThat(DetectorDefinitions.toYaml(shadow)).contains("mode: shadow");
        assertThat(DetectorDefinitions.toYaml(plain)).doesNotContain("mode");
        assertThat(DetectorDefinitions.parse(DetectorDefinitions.toYaml(shadow).getBytes(java.nio.charset.StandardCharsets.UTF_8), "again.yaml"))
                .isEqualTo(shadow);
        assertThat(DetectorDefinitions.parse(yaml.replace("mode: shadow", "mode: live")
                .getBytes(java.nio.charset.StandardCharsets.UTF_8), "live.yaml")).isEqualTo(plain);
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> DetectorDefinitions.parse(yaml.replace("mode: shadow", "mode: dry-run")
                .getBytes(java.nio.charset.StandardCharsets.UTF_8), "bad.yaml")).hasMessageContaining("mode").hasMessageContaining("shadow");
    }
}
