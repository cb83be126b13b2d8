package io.saeguard.detectors.organism;

import static io.saeguard.detectors.organism.Organism.CONCEPT;
import static io.saeguard.detectors.organism.Organism.D_IN;
import static io.saeguard.detectors.organism.Organism.GENERIC;
import static io.saeguard.detectors.organism.Organism.SAE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.saeguard.detectors.Chunk;
import io.saeguard.detectors.ChunkOutcome;
import io.saeguard.detectors.DetectorDefinition;
import io.saeguard.detectors.DetectorDefinitions;
import io.saeguard.detectors.DetectorEngine;
import io.saeguard.detectors.Policy;
import io.saeguard.detectors.StateLimits;
import io.saeguard.detectors.organism.Organism.Request;
import io.saeguard.detectors.rules.DsgConfig;
import io.saeguard.detectors.rules.FeaturesConfig;
import io.saeguard.detectors.select.ExampleSet;
import io.saeguard.detectors.select.FeatureSelection;
import io.saeguard.detectors.select.MarkdownReport;
import io.saeguard.detectors.select.SelectionOptions;
import io.saeguard.detectors.select.SelectionOptions.Method;
import io.saeguard.detectors.select.SelectionOptions.RuleChoice;
import io.saeguard.detectors.select.SelectionResult;
import io.saeguard.topics.events.Action;
import io.saeguard.topics.events.Decision;
import io.saeguard.topics.events.Tier;
import io.saeguard.topics.events.VectorRef;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalInt;
import java.util.OptionalLong;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The proof on a model organism (issue 5): on data with planted concept directions, feature selection
 * recovers them, the detectors it writes fire on the planted requests, DSG and windowed DSG behave as
 * specified under the padding attack, steer/clamp decisions name the right directions, and every score
 * is recomputed here independently (from the dense codes, without the engine). Fresh seed per run,
 * printed; rerun one with {@code -Dsaeguard.organism.seed=N}.
 *
 * <p>Stated bounds, on 120 fresh planted and 120 fresh benign requests of 40 tokens (plus BOS):
 * <ul>
 *   <li>dsg: recall ≥ 0.95 and false-positive rate ≤ 0.15. τ sits at the 95th percentile of benign ρ,
 *       so about 5 % of benign requests fire by construction (§1.2); estimated from 90 calibration
 *       requests, it lands anywhere from 0 to ~10 % over seeds (24 seeds: at most 11 of 120);</li>
 *   <li>features (thresholds above every training negative): precision ≥ 0.95 and recall ≥ 0.95;</li>
 *   <li>the selection report's held-out AUROC ≥ 0.98 (dsg) and ≥ 0.9 (raw-probe baseline);</li>
 *   <li>padding attack (innocuous filler, at least 1600 tokens and enough to dilute ρ to half of τ, before
 *       a planted request both variants catch): plain dsg catches none, windowed dsg (W = 16) catches all.</li>
 * </ul>
 */
class ModelOrganismTest {
    static final long SEED = Long.getLong("saeguard.organism.seed", System.nanoTime());
    static final int TOKENS = 40;
    static final int CHUNK = 16;
    static final int WINDOW = 16;
    static final int FILLER = 1600;

    static Organism organism;
    static List<Request> testRequests;
    static SelectionResult dsg;
    static SelectionResult dsgWindowed;
    static SelectionResult features;
    static SelectionResult dsgWithoutRandom;

    @BeforeAll
    static void plantAndSelect() {
        System.out.println("ModelOrganismTest seed: " + SEED + " (-Dsaeguard.organism.seed=" + SEED + " to rerun)");
        organism = new Organism(SEED);
        List<Request> pos = new ArrayList<>();
        List<Request> neg = new ArrayList<>();
        for (int i = 0; i < 120; i++) {
            pos.add(organism.request(TOKENS, true, false));
            neg.add(organism.request(TOKENS, false, false));
        }
        ExampleSet positive = Organism.exampleSet(pos);
        ExampleSet negative = Organism.exampleSet(neg);
        Optional<ExampleSet> random = Optional.of(Organism.exampleSet(List.of(organism.randomTokens(2000))));
        // LangFIR limit 5 %: above the organism's interference floor (through random benign directions a
        // feature fires on 0.2–1 % of random tokens), far below the generic feature's 40 %.
        SelectionOptions base = SelectionOptions.defaults("organism-concept", SAE).withTopN(3).withRandomRateLimit(0.05);
        dsg = FeatureSelection.select(positive, negative, random, base);
        dsgWindowed = FeatureSelection.select(positive, negative, random, base.withWindow(WINDOW));
        features = FeatureSelection.select(positive, negative, random, base.withMethod(Method.MEAN_DIFF).withRule(RuleChoice.FEATURES));
        dsgWithoutRandom = FeatureSelection.select(positive, negative, Optional.empty(), base);
        testRequests = new ArrayList<>();
        for (int i = 0; i < 120; i++) {
            testRequests.add(organism.request(TOKENS, true, true));
            testRequests.add(organism.request(TOKENS, false, true));
        }
    }

    private static DetectorEngine engine(DetectorDefinition d) {
        return DetectorEngine.create(List.of(d), organism.directions(), new StateLimits(Duration.ofMinutes(5), 1000));
    }

    /** Feeds the request chunk by chunk; returns every outcome. */
    private static List<ChunkOutcome> run(DetectorEngine engine, String id, Request r) {
        List<ChunkOutcome> out = new ArrayList<>();
        for (Chunk c : Organism.chunks(id, r, CHUNK)) {
            out.add(engine.evaluate(c, 1_000));
        }
        return out;
    }

    private static ChunkOutcome last(List<ChunkOutcome> outcomes) {
        return outcomes.get(outcomes.size() - 1);
    }

    private static Set<Integer> ids(DetectorDefinition d) {
        if (d.rule() instanceof DsgConfig c) {
            return c.features().stream().map(DsgConfig.Feature::id).collect(Collectors.toSet());
        }
        return ((FeaturesConfig) d.rule()).features().stream().map(FeaturesConfig.Feature::id).collect(Collectors.toSet());
    }

    // ---- independent computations over the dense codes; token 0 (BOS) never counts ----

    private static boolean fires(float[] codes, DsgConfig c) {
        return c.features().stream().anyMatch(f -> codes[f.id()] > f.threshold());
    }

    /** Plain ρ over tokens [1, end). */
    private static double rho(Request r, DsgConfig c, int end) {
        int fired = 0;
        for (int t = 1; t < end; t++) {
            fired += fires(r.codes()[t], c) ? 1 : 0;
        }
        return fired / (double) (end - 1);
    }

    /** Windowed ρ after tokens [1, end): max over full windows, or over chunk-end prefixes while shorter than W. */
    private static double windowedRho(Request r, DsgConfig c, int w, int end) {
        double best = 0;
        for (int stop = 1 + w; stop <= end; stop++) {
            int fired = 0;
            for (int t = stop - w; t < stop; t++) {
                fired += fires(r.codes()[t], c) ? 1 : 0;
            }
            best = Math.max(best, fired / (double) w);
        }
        for (int chunkEnd = CHUNK; chunkEnd < end + CHUNK; chunkEnd += CHUNK) {
            int e = Math.min(chunkEnd, end);
            if (e - 1 < w && e > 1) {
                best = Math.max(best, rho(r, c, e));
            }
        }
        return best;
    }

    /** Max over tokens [1, end) of max over listed features of a/threshold. */
    private static double featuresMax(Request r, FeaturesConfig c, int end) {
        double best = 0;
        for (int t = 1; t < end; t++) {
            for (FeaturesConfig.Feature f : c.features()) {
                best = Math.max(best, r.codes()[t][f.id()] / f.threshold().getAsDouble());
            }
        }
        return best;
    }

    private record Confusion(int tp, int fp, int fn, int tn) {
        double precision() {
            return tp / (double) Math.max(1, tp + fp);
        }

        double recall() {
            return tp / (double) (tp + fn);
        }
    }

    @Test
    void selectRecoversThePlantedFeaturesAndLangFirRemovesTheGenericOne() {
        assertThat(ids(dsg.detector())).containsExactlyInAnyOrder(17, 101, 150);
        assertThat(dsg.report().droppedByRandom()).contains(GENERIC);
        assertThat(ids(dsgWindowed.detector())).containsExactlyInAnyOrder(17, 101, 150);
        assertThat(ids(features.detector())).containsExactlyInAnyOrder(17, 101, 150);
    }

    @Test
    void withoutRandomTokensTheGenericFeatureTakesAPlace() {
        // The DSG ranking sorts by forget score; the generic feature fires on 40 % of positive tokens.
        assertThat(ids(dsgWithoutRandom.detector())).contains(GENERIC).hasSize(3);
        assertThat(dsgWithoutRandom.report().droppedByRandom()).isEmpty();
    }

    @Test
    void dsgDetectorFiresOnThePlantedRequestsAndEveryScoreMatchesAnIndependentRho() {
        // Given
        DsgConfig rule = (DsgConfig) dsg.detector().rule();
        DetectorEngine engine = engine(dsg.detector());
        int tp = 0;
        int fp = 0;
        int fn = 0;
        int tn = 0;

        // When
        for (int i = 0; i < testRequests.size(); i++) {
            Request r = testRequests.get(i);
            List<ChunkOutcome> outcomes = run(engine, "dsg-" + i, r);
            for (int k = 0; k < outcomes.size(); k++) {
                int end = Math.min(r.tokens(), (k + 1) * CHUNK);
                double expected = rho(r, rule, end) / rule.tau();
                assertThat(outcomes.get(k).verdicts().get(0).score()).as("request %d chunk %d", i, k).isCloseTo(expected, within(1e-12));
            }
            boolean flagged = last(outcomes).decision().action() == Action.FLAG;
            tp += flagged && r.planted() ? 1 : 0;
            fp += flagged && !r.planted() ? 1 : 0;
            fn += !flagged && r.planted() ? 1 : 0;
            tn += !flagged && !r.planted() ? 1 : 0;
        }

        // Then
        Confusion c = new Confusion(tp, fp, fn, tn);
        System.out.println("dsg on held-out organism requests: " + c + ", tau = " + rule.tau());
        assertThat(c.recall()).isGreaterThanOrEqualTo(0.95);
        assertThat(c.fp() / (double) (c.fp() + c.tn())).isLessThanOrEqualTo(0.15);
        assertThat(engine.activeRequests()).isZero();
    }

    @Test
    void featuresDetectorFiresOnThePlantedRequestsAndEveryScoreMatchesAnIndependentMax() {
        // Given
        FeaturesConfig rule = (FeaturesConfig) features.detector().rule();
        DetectorEngine engine = engine(features.detector());
        int tp = 0;
        int fp = 0;
        int fn = 0;
        int tn = 0;

        // When
        for (int i = 0; i < testRequests.size(); i++) {
            Request r = testRequests.get(i);
            List<ChunkOutcome> outcomes = run(engine, "features-" + i, r);
            for (int k = 0; k < outcomes.size(); k++) {
                int end = Math.min(r.tokens(), (k + 1) * CHUNK);
                assertThat(outcomes.get(k).verdicts().get(0).score()).isCloseTo(featuresMax(r, rule, end), within(1e-9));
            }
            boolean flagged = last(outcomes).decision().action() == Action.FLAG;
            tp += flagged && r.planted() ? 1 : 0;
            fp += flagged && !r.planted() ? 1 : 0;
            fn += !flagged && r.planted() ? 1 : 0;
            tn += !flagged && !r.planted() ? 1 : 0;
        }

        // Then
        Confusion c = new Confusion(tp, fp, fn, tn);
        System.out.println("features on held-out organism requests: " + c);
        assertThat(c.precision()).isGreaterThanOrEqualTo(0.95);
        assertThat(c.recall()).isGreaterThanOrEqualTo(0.95);
    }

    @Test
    void theBosSinkWouldFireTheDetectorIfSpecialTokensCounted() {
        // Given a benign request whose BOS sink lies along a concept direction
        Request benign = organism.request(TOKENS, false, true);
        DetectorDefinition counted = withSpecialTokens(dsg.detector(), false);

        // When
        double skipped = last(run(engine(dsg.detector()), "bos-a", benign)).verdicts().get(0).score();
        double notSkipped = last(run(engine(counted), "bos-b", benign)).verdicts().get(0).score();

        // Then
        assertThat(benign.codes()[0][CONCEPT[0]]).isGreaterThan(20f);
        assertThat(notSkipped).isGreaterThan(skipped);
    }

    private static DetectorDefinition withSpecialTokens(DetectorDefinition d, boolean skipFirst) {
        return new DetectorDefinition(d.id(), d.sae(), d.description(), d.rule(), d.aggregate(),
                new io.saeguard.detectors.SpecialTokens(List.of(), skipFirst), d.policy());
    }

    @Test
    void paddingDilutesPlainDsgButNotWindowedDsg() {
        // Given planted requests that both variants catch, padded with benign filler in front
        DsgConfig plain = (DsgConfig) dsg.detector().rule();
        DsgConfig windowed = (DsgConfig) dsgWindowed.detector().rule();
        int caughtPlain = 0;
        int caughtWindowed = 0;
        int attacks = 0;
        for (int i = 0; i < 10; i++) {
            Request planted = organism.request(TOKENS, true, true);
            if (rho(planted, plain, planted.tokens()) < plain.tau() || windowedRho(planted, windowed, WINDOW, planted.tokens()) < windowed.tau()) {
                continue;
            }
            // The attacker pads until plain ρ is diluted well below τ: at least FILLER tokens.
            int plantedFires = (int) Math.round(rho(planted, plain, planted.tokens()) * (planted.tokens() - 1));
            int filler = Math.max(FILLER, (int) Math.ceil(2 * plantedFires / plain.tau()));
            Request attack = organism.padded(planted, filler);
            attacks++;

            // When
            double plainScore = last(run(engine(dsg.detector()), "pad-plain-" + i, attack)).verdicts().get(0).score();
            double windowedScore = last(run(engine(dsgWindowed.detector()), "pad-window-" + i, attack)).verdicts().get(0).score();

            // Then: each matches its independent ρ / τ
            assertThat(plainScore).isCloseTo(rho(attack, plain, attack.tokens()) / plain.tau(), within(1e-12));
            assertThat(windowedScore).isCloseTo(windowedRho(attack, windowed, WINDOW, attack.tokens()) / windowed.tau(), within(1e-12));
            caughtPlain += plainScore >= 1 ? 1 : 0;
            caughtWindowed += windowedScore >= 1 ? 1 : 0;
        }
        System.out.printf("padding attack (>= %d innocuous filler tokens): plain dsg caught %d/%d, windowed (W=%d) caught %d/%d%n", FILLER,
                caughtPlain, attacks, WINDOW, caughtWindowed, attacks);
        assertThat(attacks).isGreaterThanOrEqualTo(8);
        assertThat(caughtPlain).isZero();
        assertThat(caughtWindowed).isEqualTo(attacks);
    }

    @Test
    void steerAndClampDecisionsCarryTheTopFeaturesDirectionCoefficientAndScaledValue() {
        // Given the selected features detector with a medium steer band and a clamp band
        FeaturesConfig rule = (FeaturesConfig) features.detector().rule();
        Policy policy = new Policy(OptionalDouble.of(1.0), List.of(Policy.Band.steer(1.0, Tier.MEDIUM, -4.0),
                Policy.Band.clamp(2.5, -0.5)), OptionalInt.empty(), Policy.FailMode.OPEN, OptionalLong.empty());
        DetectorDefinition d = Yaml.reparse(features.detector().withPolicy(policy));
        DetectorEngine engine = engine(d);
        Request r = organism.request(TOKENS, true, true);
        int lastTop = -1;
        boolean triggered = false;
        int steers = 0;

        // When
        List<ChunkOutcome> outcomes = run(engine, "steer", r);

        // Then: recompute each chunk's decision independently
        for (int k = 0; k < outcomes.size(); k++) {
            int from = k * CHUNK;
            int to = Math.min(r.tokens(), from + CHUNK);
            double bestRatio = -1;
            int top = -1;
            double normSum = 0;
            int counted = 0;
            for (int t = Math.max(1, from); t < to; t++) {
                normSum += Organism.norm(r.x()[t]);
                counted++;
                for (FeaturesConfig.Feature f : rule.features()) {
                    double ratio = r.codes()[t][f.id()] / f.threshold().getAsDouble();
                    if (r.codes()[t][f.id()] > 0 && (ratio > bestRatio || (ratio == bestRatio && f.id() < top))) {
                        bestRatio = ratio;
                        top = f.id();
                    }
                }
            }
            if (top >= 0) {
                lastTop = top;
            }
            double score = featuresMax(r, rule, to);
            Decision decision = outcomes.get(k).decision();
            assertThat(outcomes.get(k).verdicts().get(0).score()).isCloseTo(score, within(1e-9));
            if (score >= 2.5) {
                assertThat(decision.action()).isEqualTo(Action.CLAMP);
                assertThat(decision.vector()).contains(new VectorRef(SAE + "/" + lastTop, 0.0,
                        OptionalDouble.of(-0.5 * normSum / counted)));
            } else if (score >= 1.0 || triggered) {
                assertThat(decision.action()).isEqualTo(Action.STEER);
                assertThat(decision.tier()).contains(Tier.MEDIUM);
                assertThat(decision.vector()).contains(VectorRef.of(SAE + "/" + lastTop, -4.0));
                steers++;
            } else {
                assertThat(decision.action()).isEqualTo(Action.ALLOW);
            }
            triggered |= score >= 1.0;
        }
        assertThat(triggered).isTrue();
        assertThat(steers + outcomes.stream().filter(o -> o.decision().action() == Action.CLAMP).count()).isPositive();
        for (int f : CONCEPT) {
            float[] v = engine.steeringVectors().get(SAE + "/" + f);
            for (int i = 0; i < D_IN; i++) {
                assertThat(v[i]).isCloseTo(organism.dictionary[f][i], within(1e-5f));
            }
        }
    }

    @Test
    void theReportComparesTheDetectorWithARawProbeBaseline() {
        // Then
        assertThat(dsg.report().detector().auroc()).isGreaterThanOrEqualTo(0.98);
        assertThat(dsg.report().baseline()).hasValueSatisfying(b -> assertThat(b.auroc()).isGreaterThanOrEqualTo(0.9));
        String md = MarkdownReport.render(dsg.report());
        System.out.println(md);
        assertThat(md).contains("| `organism-concept` (dsg) |").contains("| raw-probe baseline |").contains("Newton");
        assertThat(IntStream.of(CONCEPT).allMatch(f -> md.contains("| " + f + " |"))).isTrue();
    }

    @Test
    void selectedDetectorsRoundTripThroughYaml() {
        for (SelectionResult r : List.of(dsg, dsgWindowed, features)) {
            assertThat(Yaml.reparse(r.detector())).isEqualTo(r.detector());
        }
        assertThat(Arrays.asList(DetectorDefinitions.toYaml(dsgWindowed.detector()).split("\n"))).contains("  window: " + WINDOW);
    }

    /** YAML round trip helper. */
    static final class Yaml {
        static DetectorDefinition reparse(DetectorDefinition d) {
            try {
                return DetectorDefinitions.parse(DetectorDefinitions.toYaml(d).getBytes(java.nio.charset.StandardCharsets.UTF_8), "organism.yaml");
            } catch (io.saeguard.detectors.DetectorConfigException e) {
                throw new AssertionError(e.getMessage(), e);
            }
        }
    }
}
