package io.saeguard.detectors;

import static io.saeguard.detectors.TestChunks.D_SAE;
import static io.saeguard.detectors.TestChunks.SAE;
import static io.saeguard.detectors.TestChunks.chunk;
import static io.saeguard.detectors.TestChunks.oneHot;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.saeguard.topics.codes.SparseCodes;
import io.saeguard.topics.events.Action;
import io.saeguard.topics.events.Alert;
import io.saeguard.topics.events.AlertFeature;
import io.saeguard.topics.events.FeatureRef;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class DetectorEngineTest {
    static final String FLAG_BLOCK = """
            aggregate: max
            policy:
              alert_at: 1.0
              bands:
                - {min: 1.0, action: flag}
                - {min: 2.0, action: block}
            """;

    private static DetectorEngine engine(int maxRequests, String... yaml) {
        return DetectorEngine.create(java.util.Arrays.stream(yaml).map(Yaml::definition).toList(),
                TestDirections.simple(SAE, D_SAE, 8), new StateLimits(Duration.ofSeconds(10), maxRequests));
    }

    private static Chunk token(String request, long position, float a3) {
        return chunk(request, position, oneHot(D_SAE, new int[] {3}, new float[] {a3})).build();
    }

    @Test
    void seqCountsTheRequestsChunksFromZero() {
        DetectorEngine engine = engine(10, Yaml.features("d", FLAG_BLOCK));

        assertThat(engine.evaluate(token("a", 1, 0), 0).decision().seq()).isZero();
        assertThat(engine.evaluate(token("b", 1, 0), 0).decision().seq()).isZero();
        assertThat(engine.evaluate(token("a", 2, 3), 0).decision().seq()).isEqualTo(1);
        assertThat(engine.evaluate(token("a", 3, 0), 0).decision().seq()).isEqualTo(2);
    }

    @Test
    void finalChunkReleasesTheRequest() {
        // Given
        DetectorEngine engine = engine(10, Yaml.features("d", FLAG_BLOCK));
        engine.evaluate(token("a", 1, 0), 0);

        // When
        engine.evaluate(chunk("a", 2, oneHot(D_SAE, new int[] {3}, new float[] {1})).last().build(), 0);

        // Then
        assertThat(engine.activeRequests()).isZero();
    }

    @Test
    void aRequestAtTwoSaesIsReleasedAfterBothFinalChunks() {
        // Given
        DetectorEngine engine = engine(10, Yaml.features("d", FLAG_BLOCK));
        SparseCodes other = TestChunks.codes("other-sae", 8, new float[1][8]);
        engine.evaluate(chunk("a", 1, other).build(), 0);

        // When
        engine.evaluate(chunk("a", 1, oneHot(D_SAE, new int[] {3}, new float[] {1})).last().build(), 0);
        int afterFirstFinal = engine.activeRequests();
        ChunkOutcome last = engine.evaluate(chunk("a", 2, other).last().build(), 0);

        // Then
        assertThat(afterFirstFinal).isEqualTo(1);
        assertThat(last.decision().seq()).isEqualTo(2);
        assertThat(last.decision().reason()).contains("no detector reads SAE other-sae");
        assertThat(last.verdicts()).isEmpty();
        assertThat(engine.activeRequests()).isZero();
    }

    @Test
    void idleRequestsExpireAfterTheTtl() {
        // Given: TTL 10 s
        DetectorEngine engine = engine(10, Yaml.features("d", FLAG_BLOCK));
        engine.evaluate(token("old", 1, 0), 1_000);
        engine.evaluate(token("new", 1, 0), 5_000);

        // When
        int early = engine.evictExpired(10_999);
        int due = engine.evictExpired(11_000);

        // Then
        assertThat(early).isZero();
        assertThat(due).isEqualTo(1);
        assertThat(engine.activeRequests()).isEqualTo(1);
        assertThat(engine.ttlEvictions()).isEqualTo(1);
        assertThat(engine.evaluate(token("new", 2, 0), 11_000).decision().seq()).isEqualTo(1);
    }

    @Test
    void theCapEvictsTheLeastRecentlyUsedRequestAndCountsIt() {
        // Given: cap 2; "a" is touched after "b", so "b" is least recently used
        DetectorEngine engine = engine(2, Yaml.features("d", FLAG_BLOCK));
        engine.evaluate(token("a", 1, 0), 0);
        engine.evaluate(token("b", 1, 0), 1);
        engine.evaluate(token("a", 2, 0), 2);

        // When
        engine.evaluate(token("c", 1, 0), 3);

        // Then
        assertThat(engine.activeRequests()).isEqualTo(2);
        assertThat(engine.capEvictions()).isEqualTo(1);
        assertThat(engine.evaluate(token("a", 3, 0), 4).decision().seq()).isEqualTo(2);
        assertThat(engine.evaluate(token("b", 2, 0), 5).decision().seq()).isZero();
    }

    @Test
    void forgetRequestsDropsTheMatchingRequests() {
        // Given
        DetectorEngine engine = engine(10, Yaml.features("d", FLAG_BLOCK));
        for (String r : List.of("p0-1", "p0-2", "p1-1")) {
            engine.evaluate(token(r, 1, 0), 0);
        }

        // When
        int dropped = engine.forgetRequests(r -> r.startsWith("p0-"));

        // Then
        assertThat(dropped).isEqualTo(2);
        assertThat(engine.activeRequests()).isEqualTo(1);
    }

    @Test
    void alertsFireOnceAndAgainOnlyOnEscalation() {
        // Given
        DetectorEngine engine = engine(10, Yaml.features("d", FLAG_BLOCK));

        // When: flag, flag again, then block
        ChunkOutcome first = engine.evaluate(token("r", 1, 3), 0);
        ChunkOutcome repeat = engine.evaluate(token("r", 2, 3), 0);
        ChunkOutcome escalation = engine.evaluate(token("r", 3, 5), 0);

        // Then
        assertThat(first.alerts()).hasSize(1);
        assertThat(first.verdicts().get(0).alert()).isTrue();
        assertThat(repeat.alerts()).isEmpty();
        assertThat(repeat.verdicts().get(0).alert()).isFalse();
        assertThat(escalation.alerts()).singleElement().satisfies(a -> assertThat(a.action()).isEqualTo(Action.BLOCK));
    }

    @Test
    void anEscalateBandDecidesFlagAndCarriesItsEscalationWhileOtherBandsDoNot() {
        // Given
        DetectorEngine engine = engine(10, Yaml.features("d", """
                aggregate: token
                policy:
                  bands:
                    - {min: 1.0, action: escalate, judge_timeout_ms: 500, fallback: block}
                    - {min: 2.0, action: block}
                """));

        // When
        ChunkOutcome quiet = engine.evaluate(token("r", 1, 0), 0);
        ChunkOutcome escalated = engine.evaluate(token("r", 2, 3), 0);
        ChunkOutcome blocked = engine.evaluate(token("r", 3, 5), 0);

        // Then
        assertThat(quiet.escalation()).isEmpty();
        assertThat(escalated.decision().action()).isEqualTo(Action.FLAG);
        assertThat(escalated.escalation()).contains(new Policy.Escalation(500, Action.BLOCK));
        assertThat(escalated.decision().reason()).hasValueSatisfying(r -> assertThat(r).contains("escalated to the judge"));
        assertThat(blocked.escalation()).isEmpty();
    }

    @Test
    void takeSeqNumbersAfterTheRequestsChunksAndTheNextChunkAfterIt() {
        // Given
        DetectorEngine engine = engine(10, Yaml.features("d", FLAG_BLOCK));
        engine.evaluate(token("r", 1, 0), 0);

        // When
        java.util.OptionalLong taken = engine.takeSeq("r");
        long next = engine.evaluate(token("r", 2, 0), 0).decision().seq();

        // Then
        assertThat(taken).hasValue(1);
        assertThat(next).isEqualTo(2);
        assertThat(engine.takeSeq("unknown")).isEmpty();
    }

    @Test
    void anAlertCarriesTheDetectorsDecisionLabelsPositionsAndSae() {
        // Given
        DetectorEngine engine = engine(10, Yaml.features("d", FLAG_BLOCK));
        Chunk c = chunk("r", 40, oneHot(D_SAE, new int[] {-1, 3, 5, 3}, new float[] {0, 3, 8, 1})).build();

        // When
        ChunkOutcome out = engine.evaluate(c, 123);

        // Then
        Alert a = out.alerts().get(0);
        assertThat(a.decision()).isEqualTo(out.decision());
        assertThat(a.detector()).isEqualTo("d");
        assertThat(a.features()).containsExactly(
                AlertFeature.of(new FeatureRef(SAE, 5, 8.0)),
                AlertFeature.of(new FeatureRef(SAE, 3, 3.0)).withLabel("three"));
        assertThat(a.positions()).containsExactly(41L, 42L);
        assertThat(a.sae()).contains(SAE);
        assertThat(a.model()).isEmpty();
        assertThat(a.hook()).isEmpty();
        assertThat(a.excerpt()).isEmpty();
    }

    @Test
    void everyDetectorAtItsAlertLevelAlertsNotOnlyTheDecidingOne() {
        DetectorEngine engine = engine(10, Yaml.features("a", FLAG_BLOCK), Yaml.features("b", FLAG_BLOCK.replace("alert_at: 1.0", "alert_at: 0.5")));

        ChunkOutcome out = engine.evaluate(token("r", 1, 4), 0);

        assertThat(out.alerts()).extracting(Alert::detector).containsExactly("a", "b");
        assertThat(out.decision().detector()).contains("a");
    }

    @Test
    void aShadowDetectorThatWouldBlockChangesNoDecisionAndRaisesNoAlert() {
        // Given: a live detector that flags at a₃ = 2..4 and a shadow one that blocks from a₃ = 1
        DetectorEngine engine = engine(10, Yaml.features("live", FLAG_BLOCK),
                "mode: shadow\n" + Yaml.features("trial", """
                        policy:
                          alert_at: 0.5
                          bands:
                            - {min: 0.5, action: block}
                        """));

        // When: a₃ = 3 (score 1.5): live flags, shadow would block
        ChunkOutcome out = engine.evaluate(token("r", 1, 3), 7);

        // Then
        assertThat(out.decision().action()).isEqualTo(Action.FLAG);
        assertThat(out.decision().detector()).contains("live");
        assertThat(out.alerts()).extracting(Alert::detector).containsExactly("live");
        assertThat(out.verdicts()).extracting(Verdict::detector, Verdict::action, Verdict::shadow, Verdict::alert).containsExactly(
                org.assertj.core.groups.Tuple.tuple("live", Action.FLAG, false, true),
                org.assertj.core.groups.Tuple.tuple("trial", Action.BLOCK, true, false));
        assertThat(out.shadow()).singleElement().satisfies(d -> {
            assertThat(d.detector()).contains("trial");
            assertThat(d.action()).isEqualTo(Action.BLOCK);
            assertThat(d.seq()).isEqualTo(out.decision().seq());
            assertThat(d.position()).isEqualTo(out.decision().position());
        });
    }

    @Test
    void aShadowDetectorAloneLeavesTheChunkAllowed() {
        // Given
        DetectorEngine engine = engine(10, "mode: shadow\n" + Yaml.features("trial", FLAG_BLOCK));

        // When: a₃ = 5 (score 2.5): the shadow detector would block
        ChunkOutcome out = engine.evaluate(token("r", 1, 5), 0);
        ChunkOutcome quiet = engine.evaluate(token("q", 1, 0), 0);

        // Then
        assertThat(out.decision().action()).isEqualTo(Action.ALLOW);
        assertThat(out.decision().detector()).isEmpty();
        assertThat(out.alerts()).isEmpty();
        assertThat(out.verdicts()).singleElement().satisfies(v -> {
            assertThat(v.shadow()).isTrue();
            assertThat(v.action()).isEqualTo(Action.BLOCK);
            assertThat(v.mode()).isEqualTo("shadow");
        });
        assertThat(out.shadow()).extracting(io.saeguard.topics.events.Decision::action).containsExactly(Action.BLOCK);
        assertThat(quiet.shadow()).isEmpty();
        assertThat(quiet.verdicts()).singleElement().satisfies(v -> assertThat(v.action()).isEqualTo(Action.ALLOW));
    }

    @Test
    void hotReloadReplacesOneDetectorAndKeepsTheOthersState() {
        // Given: two max-aggregating detectors that saw a₃ = 3 (score 1.5)
        DetectorEngine engine = engine(10, Yaml.features("kept", FLAG_BLOCK), Yaml.features("swapped", FLAG_BLOCK));
        engine.evaluate(token("r", 1, 3), 0);

        // When: "swapped" gets a lower threshold on feature 3
        DetectorEngine returned = engine.withDefinition(Yaml.definition(Yaml.features("swapped", FLAG_BLOCK).replace("threshold: 2.0", "threshold: 1.0")));
        ChunkOutcome out = engine.evaluate(token("r", 2, 0.5f), 0);

        // Then: kept remembers 1.5; swapped starts afresh: 0.5 / 1.0
        assertThat(returned).isSameAs(engine);
        assertThat(out.verdicts()).extracting(Verdict::detector, Verdict::score)
                .containsExactly(org.assertj.core.groups.Tuple.tuple("kept", 1.5), org.assertj.core.groups.Tuple.tuple("swapped", 0.5));
        assertThat(engine.definitions()).extracting(DetectorDefinition::id).containsExactly("kept", "swapped");
    }

    @Test
    void hotReloadOfABadDefinitionThrowsAndKeepsTheOldVersion() {
        // Given
        DetectorEngine engine = engine(10, Yaml.features("d", FLAG_BLOCK));
        DetectorDefinition old = engine.definitions().get(0);
        DetectorDefinition bad = Yaml.definition(Yaml.features("d",
                "aggregate: max\npolicy: {vector_feature: 999, bands: [{min: 1.0, action: steer, tier: low, coefficient: -1.0}]}\n"));

        // When / Then
        assertThatThrownBy(() -> engine.withDefinition(bad)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("detector 'd'").hasMessageContaining("feature 999");
        assertThat(engine.definitions()).containsExactly(old);
        assertThat(engine.steeringVectors()).isEmpty();
        assertThat(engine.evaluate(token("r", 1, 5), 0).decision().action()).isEqualTo(Action.BLOCK);
    }

    @Test
    void hotReloadAddsAnUnknownIdAndRemovalDropsIt() {
        DetectorEngine engine = engine(10, Yaml.features("a", FLAG_BLOCK));

        engine.withDefinition(Yaml.definition(Yaml.features("b", FLAG_BLOCK)));
        int withB = engine.evaluate(token("r", 1, 3), 0).verdicts().size();
        engine.withoutDefinition("a");

        assertThat(withB).isEqualTo(2);
        assertThat(engine.evaluate(token("r", 2, 3), 0).verdicts()).extracting(Verdict::detector).containsExactly("b");
    }

    @Test
    void duplicateIdsAreRejected() {
        assertThatThrownBy(() -> engine(10, Yaml.features("d", FLAG_BLOCK), Yaml.features("d", FLAG_BLOCK)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'d' is defined twice");
    }

    @Test
    void describesItsSaesWatchedFeaturesAndActivationNeeds() {
        DetectorEngine engine = engine(10, Yaml.features("d", FLAG_BLOCK),
                Yaml.features("e", "aggregate: max\npolicy: {vector_feature: 11, bands: [{min: 1.0, action: clamp, value: -1}]}\n")
                        .replace("sae: sae-test", "sae: sae-test"));

        assertThat(engine.saes()).containsExactly(SAE);
        assertThat(engine.watchedFeatures()).isEqualTo(Map.of(SAE, Set.of(3, 5, 11)));
        assertThat(engine.needsActivations(SAE)).isFalse();
        assertThat(engine.steeringVectors()).containsOnlyKeys("sae-test/11");
    }

    @Test
    void aFeatureOutsideTheDictionaryFailsTheDetectorWhichFailsOpenByDefault() {
        // Given: the detector lists feature 5, the chunk's SAE has only 4 features
        DetectorEngine engine = engine(10, Yaml.features("d", FLAG_BLOCK));
        Chunk small = chunk("r", 1, TestChunks.codes(SAE, 4, new float[1][4])).build();

        // When
        ChunkOutcome out = engine.evaluate(small, 0);

        // Then
        Verdict v = out.verdicts().get(0);
        assertThat(v.failure()).hasValueSatisfying(f -> {
            assertThat(f.kind()).isEqualTo(Verdict.Failure.ERROR);
            assertThat(f.message()).contains("feature 5 is outside the SAE's dictionary [0, 4)");
        });
        assertThat(v.action()).isEqualTo(Action.ALLOW);
        assertThat(v.score()).isNaN();
        assertThat(out.decision().action()).isEqualTo(Action.ALLOW);
        assertThat(out.alerts()).isEmpty();
    }

    @Test
    void nonFiniteActivationsFailTheDetector() {
        DetectorEngine engine = engine(10, Yaml.features("d", FLAG_BLOCK));

        Verdict v = engine.evaluate(token("r", 1, Float.NaN), 0).verdicts().get(0);

        assertThat(v.failure()).hasValueSatisfying(f -> assertThat(f.message()).contains("token score NaN at position 1"));
        assertThat(v.action()).isEqualTo(Action.ALLOW);
    }

    @Test
    void chunkSizesAreValidated() {
        SparseCodes codes = TestChunks.codes(SAE, D_SAE, new float[2][D_SAE]);

        assertThatThrownBy(() -> new Chunk("r", SAE, 0, codes, java.util.Optional.empty(), 0, new float[1], java.util.Optional.empty(), false))
                .hasMessageContaining("activationNorms has 1 entries for 2 tokens");
        assertThatThrownBy(() -> new Chunk("r", SAE, 0, codes, java.util.Optional.of(new float[5]), 3, new float[2], java.util.Optional.empty(), false))
                .hasMessageContaining("expected 2 x 3 = 6");
        assertThatThrownBy(() -> new Chunk("r", "other", 0, codes, java.util.Optional.empty(), 0, new float[2], java.util.Optional.empty(), false))
                .hasMessageContaining("codes are from 'sae-test'");
        assertThatThrownBy(() -> new Chunk("r", SAE, 0, codes, java.util.Optional.empty(), 0, new float[2], java.util.Optional.of(new int[3]), false))
                .hasMessageContaining("tokenIds has 3 entries");
    }
}
