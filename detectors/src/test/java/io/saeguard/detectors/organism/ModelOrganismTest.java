package io.saeguard.detectors.organism;

import io.saeguard.detectors.spi.Aggregation;
import static io.saeguard.detectors.organism.Organism.CONCEPT;
import static io.saeguard.detectors.organism.Organism.D_IN;
import static io.saeguard.detectors.organism.Organism.GENERIC;
import static io.saeguard.detectors.organism.Organism.SAE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.saeguard.detectors.Chunk;
import io.saeguard.detectors.ChunkOutcome;
import io.saeguard.detectors.spi.DetectorConfigException;
import io.saeguard.detectors.DetectorDefinition;
import io.saeguard.detectors.DetectorDefinitions;
import io.saeguard.detectors.DetectorEngine;
import io.saeguard.detectors.Policy;
import io.saeguard.detectors.StateLimits;
import io.saeguard.detectors.Verdict;
import io.saeguard.detectors.organism.Organism.Request;
import io.saeguard.detectors.rules.DsgConfig;
import io.saeguard.detectors.rules.FeaturesConfig;
import io.saeguard.detectors.rules.ProbeWeights;
import io.saeguard.detectors.select.ExampleSet;
import io.saeguard.detectors.select.FeatureSelection;
import io.saeguard.detectors.select.LogisticRegression;
import io.saeguard.detectors.select.MarkdownReport;
import io.saeguard.detectors.select.SelectionOptions;
import io.saeguard.detectors.select.SelectionOptions.Method;
import io.saeguard.detectors.select.SelectionOptions.RuleChoice;
import io.saeguard.detectors.select.SelectionResult;
import io.saeguard.topics.events.Action;
import io.saeguard.topics.events.Alert;
import io.saeguard.topics.events.Decision;
import io.saeguard.topics.events.Tier;
import io.saeguard.topics.events.VectorRef;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalInt;
import java.util.OptionalLong;
import java.util.Set;
import java.util.function.Function;
import java.util.function.IntToDoubleFunction;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The proof on a model organism (issue 5): on data with planted concept directions, feature selection
 * recovers them, the detectors it writes fire on the planted requests, DSG and windowed DSG behave as
 * specified under the padding attack, steer/clamp decisions name the right directions, probes trained
 * on the organism (over SAE codes and over raw activations) separate it too, and every chunk's
 * decision is recomputed here independently, from the formulas over the dense codes and activations,
 * without the engine: its score, action, seq and position, whether an alert is due (the first time
 * alert_at is reached, then only on escalation) and the alert's firing positions. Fresh seed per run,
 * printed; rerun one with {@code -Dsaeguard.organism.seed=N}.
 *
 * <p>Stated bounds, on 120 fresh planted and 120 fresh benign requests of 40 tokens (plus BOS), sent in
 * chunks of 16; a request counts as flagged when its last decision acts (the score over the whole
 * request, which τ is calibrated for); the rate by any decision is printed too:
 * <ul>
 *   <li>dsg: recall ≥ 0.95 and false-positive rate ≤ 0.2. τ sits at the 95th percentile of benign ρ,
 *       so about 5 % of benign requests fire by construction (§1.2); estimated from 90 calibration
 *       requests of discrete ρ (k/40), it lands anywhere from 0 to 15 % over seeds (405 seeds, replaying
 *       these formulas: median 3, at most 18 of 120). By any decision, more benign requests are flagged
 *       at some chunk (median 22, at most 46 of 120): ρ over the first 15 or 31 tokens is coarser and
 *       noisier than over 40;</li>
 *   <li>windowed dsg (W = 16): recall ≥ 0.95 and false-positive rate ≤ 0.4. τ sits just above P95 of the pooled
 *       benign window rates, which is one fire in 16 tokens, and a request has 25 windows. A first chunk of 15
 *       counted tokens enters as fired / W (Aggregation), so it can no longer flag a benign request on its own:
 *       with the plain ρ of the prefix (1/15 > τ) 9–18 of 120 benign requests were flagged that way alone; with
 *       fired / W, 0–30 of 120 over 7 seeds, all from full windows (printed). The DSG replication saw benign
 *       false positives rise to 0.12–0.22 with windows (§1.5);</li>
 *   <li>features (thresholds above every training negative): precision ≥ 0.95 and recall ≥ 0.95;</li>
 *   <li>probe and raw-probe (per-token L2 logistic regression trained on the training requests' tokens,
 *       labelled by whether a concept was planted in them; aggregate mean, flag at 0.15, block at 0.3):
 *       precision ≥ 0.95 and recall ≥ 0.95 (23 seeds: at most one miss in 120, no false positive), and
 *       the SAE-code probe's three largest weights are the planted features;</li>
 *   <li>the selection report's held-out AUROC ≥ 0.98 (dsg) and ≥ 0.9 (raw-probe baseline);</li>
 *   <li>padding attack (innocuous filler, at least 1600 tokens and enough to dilute ρ to half of τ, before
 *       a planted request both variants catch): plain dsg acts on no chunk of any attack, windowed dsg
 *       (W = 16) acts on every attack.</li>
 * </ul>
 */
class ModelOrganismTest {
    static final long SEED = Long.getLong("saeguard.organism.seed", System.nanoTime());
    static final int TOKENS = 40;
    static final int CHUNK = 16;
    static final int WINDOW = 16;
    static final int FILLER = 1600;
    static final double PROBE_FIRE_AT = 0.5;
    static final double PROBE_FLAG = 0.15;
    static final double PROBE_BLOCK = 0.3;

    static Organism organism;
    static List<Request> training;
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
        training = new ArrayList<>(pos);
        training.addAll(neg);
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

    private static Set<Integer> ids(DetectorDefinition d) {
        if (d.rule() instanceof DsgConfig c) {
            return c.features().stream().map(DsgConfig.Feature::id).collect(Collectors.toSet());
        }
        return ((FeaturesConfig) d.rule()).features().stream().map(FeaturesConfig.Feature::id).collect(Collectors.toSet());
    }

    // ---- independent computations over the dense codes and activations, without the engine ----

    /**
     * One detector's arithmetic on one request, recomputed here from the formulas (issue 5;
     * docs/algorithms.md#dsg and #probe-and-raw-probe; the Aggregation and Policy Javadoc): each token's score (tokens before
     * {@code first} are special and never count), the level at which a token fires, and the request's
     * score after its tokens {@code [0, end)}.
     */
    private record Independent(double[] token, int first, double fireLevel, IntToDoubleFunction scoreAfter) {}

    /** DSG: a token fires when any selected feature is strictly above its threshold (§1.3). */
    private static boolean fires(float[] codes, DsgConfig c) {
        return c.features().stream().anyMatch(f -> codes[f.id()] > f.threshold());
    }

    private static double[] dsgTokens(Request r, DsgConfig c) {
        double[] fired = new double[r.tokens()];
        for (int t = 0; t < r.tokens(); t++) {
            fired[t] = fires(r.codes()[t], c) ? 1 : 0;
        }
        return fired;
    }

    /** Plain ρ over the counted tokens [first, end). */
    private static double rho(double[] fired, int first, int end) {
        int n = 0;
        for (int t = first; t < end; t++) {
            n += (int) fired[t];
        }
        return n / (double) (end - first);
    }

    /**
     * Windowed ρ after tokens [first, end) of a request of {@code total} tokens, read as chunks of {@link #CHUNK}: the
     * largest rate over any W consecutive counted tokens, and, at the end of each chunk while fewer than W tokens
     * were counted, the fired tokens so far over W, or, at the request's end, over the tokens counted.
     */
    private static double windowedRho(double[] fired, int first, int w, int end, int total) {
        double best = 0;
        for (int stop = first + w; stop <= end; stop++) {
            best = Math.max(best, rho(fired, stop - w, stop));
        }
        for (int chunkEnd = CHUNK; chunkEnd < end + CHUNK; chunkEnd += CHUNK) {
            int e = Math.min(chunkEnd, end);
            if (e - first < w && e > first) {
                double n = rho(fired, first, e) * (e - first);
                best = Math.max(best, n / (e == total ? e - first : w));
            }
        }
        return best;
    }

    private static Independent dsg(Request r, DsgConfig c, int first) {
        double[] fired = dsgTokens(r, c);
        IntToDoubleFunction score = c.window().isPresent()
                ? end -> windowedRho(fired, first, c.window().getAsInt(), end, r.tokens()) / c.tau()
                : end -> rho(fired, first, end) / c.tau();
        return new Independent(fired, first, 1.0, score);
    }

    /** features, match any: a token's score is the largest a_f / threshold_f; aggregate max over the request. */
    private static Independent featuresMax(Request r, FeaturesConfig c) {
        double[] ratio = new double[r.tokens()];
        for (int t = 0; t < r.tokens(); t++) {
            for (FeaturesConfig.Feature f : c.features()) {
                ratio[t] = Math.max(ratio[t], r.codes()[t][f.id()] / f.threshold().getAsDouble());
            }
        }
        return new Independent(ratio, 1, 1.0, end -> {
            double best = 0;
            for (int t = 1; t < end; t++) {
                best = Math.max(best, ratio[t]);
            }
            return best;
        });
    }

    /** A probe: p_t = σ(b + w · input_t) per token (§8); aggregate mean over the request's counted tokens. */
    private static Independent probeMean(float[][] input, float[] w, float b, double fireAt) {
        double[] p = new double[input.length];
        for (int t = 0; t < input.length; t++) {
            double z = b;
            for (int i = 0; i < w.length; i++) {
                z += w[i] * (double) input[t][i];
            }
            p[t] = 1 / (1 + Math.exp(-z));
        }
        return new Independent(p, 1, fireAt, end -> {
            double sum = 0;
            for (int t = 1; t < end; t++) {
                sum += p[t];
            }
            return sum / (end - 1);
        });
    }

    /**
     * The policy's arithmetic for bands without steering tiers (Policy and DetectorEngine Javadoc): the
     * action is the band with the largest {@code min} the score reaches, else allow; an alert is due when
     * the score reaches {@code alert_at} and the action is more severe than any alerted on before in the
     * request (block &gt; clamp &gt; steer &gt; flag &gt; allow).
     */
    private static final class PolicyReplay {
        private static final List<Action> SEVERITY = List.of(Action.ALLOW, Action.FLAG, Action.STEER, Action.CLAMP, Action.BLOCK);
        private final Policy policy;
        private int alerted = -1;

        PolicyReplay(Policy policy) {
            assertThat(policy.bands()).as("bands this replay models").allSatisfy(b -> assertThat(b.action()).isIn(Action.FLAG, Action.BLOCK));
            this.policy = policy;
        }

        Action action(double score) {
            Action a = Action.ALLOW;
            double reached = Double.NEGATIVE_INFINITY;
            for (Policy.Band b : policy.bands()) {
                if (score >= b.min() && b.min() > reached) {
                    reached = b.min();
                    a = b.action();
                }
            }
            return a;
        }

        boolean alert(double score, Action action) {
            boolean due = policy.alertAt().isPresent() && score >= policy.alertAt().getAsDouble() && SEVERITY.indexOf(action) > alerted;
            if (due) {
                alerted = SEVERITY.indexOf(action);
            }
            return due;
        }
    }

    /**
     * Feeds the request to the engine chunk by chunk and checks every chunk's verdict, decision and
     * alerts against the independent computation: the score (within {@code tolerance}), the action, the
     * decision's seq, position, detector and score, whether an alert is due and, when it is, its
     * action, score and firing positions. Returns the actions, chunk by chunk.
     */
    private static List<Action> runChecked(DetectorEngine engine, DetectorDefinition d, String requestId, Request r,
            Independent expected, double tolerance, boolean activations) {
        PolicyReplay policy = new PolicyReplay(d.policy());
        List<Action> actions = new ArrayList<>();
        List<Chunk> chunks = Organism.chunks(requestId, r, CHUNK, activations);
        for (int k = 0; k < chunks.size(); k++) {
            Chunk chunk = chunks.get(k);
            int from = (int) chunk.position();
            int to = from + chunk.tokens();
            ChunkOutcome out = engine.evaluate(chunk, 1_000);
            double score = expected.scoreAfter().applyAsDouble(to);
            Action action = policy.action(score);
            boolean alert = policy.alert(score, action);
            List<Long> firing = new ArrayList<>();
            for (int t = Math.max(from, expected.first()); t < to; t++) {
                if (expected.token()[t] >= expected.fireLevel()) {
                    firing.add((long) t);
                }
            }
            String where = d.id() + " on " + requestId + ", chunk " + k;

            assertThat(out.verdicts()).as(where).hasSize(1);
            Verdict verdict = out.verdicts().get(0);
            assertThat(verdict.detector()).as(where).isEqualTo(d.id());
            assertThat(verdict.score()).as(where + ": score").isCloseTo(score, within(tolerance));
            assertThat(verdict.action()).as(where + ": verdict action at score %s", score).isEqualTo(action);
            assertThat(verdict.alert()).as(where + ": alert due").isEqualTo(alert);
            Decision decision = out.decision();
            assertThat(decision.seq()).as(where).isEqualTo(k);
            assertThat(decision.position()).as(where).isEqualTo(from);
            assertThat(decision.action()).as(where + ": decision action at score %s", score).isEqualTo(action);
            if (action == Action.ALLOW) {
                assertThat(decision.detector()).as(where).isEmpty();
                assertThat(decision.score()).as(where).isEmpty();
            } else {
                assertThat(decision.detector()).as(where).contains(d.id());
                assertThat(decision.score().orElseThrow()).as(where).isCloseTo(score, within(tolerance));
            }
            if (alert) {
                assertThat(out.alerts()).as(where + ": alerts").hasSize(1);
                Alert a = out.alerts().get(0);
                assertThat(a.detector()).as(where).isEqualTo(d.id());
                assertThat(a.seq()).as(where).isEqualTo(k);
                assertThat(a.action()).as(where).isEqualTo(action);
                assertThat(a.score()).as(where).isCloseTo(score, within(tolerance));
                assertThat(a.positions()).as(where + ": firing positions").isEqualTo(firing);
            } else {
                assertThat(out.alerts()).as(where + ": alerts").isEmpty();
            }
            actions.add(action);
        }
        return actions;
    }

    private static boolean acted(Action a) {
        return a != Action.ALLOW;
    }

    private record Confusion(int tp, int fp, int fn, int tn) {
        static Confusion of(List<Request> requests, List<Boolean> predicted) {
            int tp = 0;
            int fp = 0;
            int fn = 0;
            int tn = 0;
            for (int i = 0; i < requests.size(); i++) {
                boolean planted = requests.get(i).planted();
                boolean p = predicted.get(i);
                tp += p && planted ? 1 : 0;
                fp += p && !planted ? 1 : 0;
                fn += !p && planted ? 1 : 0;
                tn += !p && !planted ? 1 : 0;
            }
            return new Confusion(tp, fp, fn, tn);
        }

        double precision() {
            return tp / (double) Math.max(1, tp + fp);
        }

        double recall() {
            return tp / (double) (tp + fn);
        }

        double falsePositiveRate() {
            return fp / (double) (fp + tn);
        }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "tp=%d fp=%d fn=%d tn=%d precision=%.3f recall=%.3f fpr=%.3f", tp, fp, fn, tn,
                    precision(), recall(), falsePositiveRate());
        }
    }

    /** Confusion of the test requests by each one's last decision (its whole-request score) and by any of its decisions. */
    private record Classified(Confusion byLast, Confusion byAny) {
        @Override
        public String toString() {
            return "by the last decision " + byLast + "; by any decision " + byAny;
        }
    }

    /** Runs every test request through the detector, checking every chunk with {@link #runChecked}. */
    private static Classified classify(DetectorDefinition d, double tolerance, boolean activations,
            Function<Request, Independent> expected) {
        DetectorEngine engine = engine(d);
        List<Boolean> byLast = new ArrayList<>();
        List<Boolean> byAny = new ArrayList<>();
        for (int i = 0; i < testRequests.size(); i++) {
            Request r = testRequests.get(i);
            List<Action> actions = runChecked(engine, d, d.id() + "-" + i, r, expected.apply(r), tolerance, activations);
            byLast.add(acted(actions.get(actions.size() - 1)));
            byAny.add(actions.stream().anyMatch(ModelOrganismTest::acted));
        }
        assertThat(engine.activeRequests()).isZero();
        return new Classified(Confusion.of(testRequests, byLast), Confusion.of(testRequests, byAny));
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
    void dsgDetectorFiresOnThePlantedRequestsAndEveryDecisionMatchesAnIndependentRho() {
        // Given
        DsgConfig rule = (DsgConfig) dsg.detector().rule();

        // When: every chunk's score, action and alert checked against ρ / τ computed here
        Classified c = classify(dsg.detector(), 1e-12, false, r -> dsg(r, rule, 1));

        // Then
        System.out.println("dsg on held-out organism requests, tau = " + rule.tau() + ": " + c);
        assertThat(c.byLast().recall()).isGreaterThanOrEqualTo(0.95);
        assertThat(c.byLast().falsePositiveRate()).isLessThanOrEqualTo(0.2);
    }

    @Test
    void windowedDsgDetectorFiresOnThePlantedRequestsAndEveryDecisionMatchesAnIndependentWindowedRho() {
        // Given
        DsgConfig rule = (DsgConfig) dsgWindowed.detector().rule();

        // When
        Classified c = classify(dsgWindowed.detector(), 1e-12, false, r -> dsg(r, rule, 1));

        // Then; the printout says how benign requests reach τ: in a full window, or only through the first
        // chunk's prefix (its 15 counted tokens are fewer than W: fired / W)
        int standInOnly = 0;
        int fullWindow = 0;
        for (Request r : testRequests) {
            double[] fired = dsgTokens(r, rule);
            double full = 0;
            for (int stop = 1 + WINDOW; stop <= r.tokens(); stop++) {
                full = Math.max(full, rho(fired, stop - WINDOW, stop));
            }
            fullWindow += !r.planted() && full >= rule.tau() ? 1 : 0;
            standInOnly += !r.planted() && full < rule.tau() && rho(fired, 1, CHUNK) * (CHUNK - 1) / WINDOW >= rule.tau() ? 1 : 0;
        }
        System.out.println("windowed dsg (W = " + WINDOW + ") on held-out organism requests, tau = " + rule.tau() + ": " + c
                + "; benign requests reaching tau in a full window " + fullWindow
                + ", only through the first chunk's prefix " + standInOnly);
        assertThat(c.byLast().recall()).isGreaterThanOrEqualTo(0.95);
        assertThat(c.byLast().falsePositiveRate()).isLessThanOrEqualTo(0.4);
    }

    @Test
    void featuresDetectorFiresOnThePlantedRequestsAndEveryDecisionMatchesAnIndependentMax() {
        // Given
        FeaturesConfig rule = (FeaturesConfig) features.detector().rule();

        // When
        Classified c = classify(features.detector(), 1e-9, false, r -> featuresMax(r, rule));

        // Then
        System.out.println("features on held-out organism requests: " + c);
        assertThat(c.byLast().precision()).isGreaterThanOrEqualTo(0.95);
        assertThat(c.byLast().recall()).isGreaterThanOrEqualTo(0.95);
    }

    @Test
    void theBosSinkWouldFireTheDetectorIfSpecialTokensCounted() {
        // Given a benign request whose BOS sink lies along a concept direction
        Request benign = organism.request(TOKENS, false, true);
        DsgConfig rule = (DsgConfig) dsg.detector().rule();
        DetectorDefinition counted = withSpecialTokens(dsg.detector(), false);

        // When: every chunk checked, with token 0 skipped and with it counted
        runChecked(engine(dsg.detector()), dsg.detector(), "bos-a", benign, dsg(benign, rule, 1), 1e-12, false);
        runChecked(engine(counted), counted, "bos-b", benign, dsg(benign, rule, 0), 1e-12, false);

        // Then
        assertThat(benign.codes()[0][CONCEPT[0]]).isGreaterThan(20f);
        assertThat(dsg(benign, rule, 0).scoreAfter().applyAsDouble(benign.tokens()))
                .isGreaterThan(dsg(benign, rule, 1).scoreAfter().applyAsDouble(benign.tokens()));
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
            if (dsg(planted, plain, 1).scoreAfter().applyAsDouble(planted.tokens()) < 1
                    || dsg(planted, windowed, 1).scoreAfter().applyAsDouble(planted.tokens()) < 1) {
                continue;
            }
            // The attacker pads until plain ρ is diluted well below τ: at least FILLER tokens.
            int plantedFires = (int) Math.round(rho(dsgTokens(planted, plain), 1, planted.tokens()) * (planted.tokens() - 1));
            int filler = Math.max(FILLER, (int) Math.ceil(2 * plantedFires / plain.tau()));
            Request attack = organism.padded(planted, filler);
            attacks++;

            // When: every chunk of the attack checked against its independent ρ / τ
            List<Action> plainActions = runChecked(engine(dsg.detector()), dsg.detector(), "pad-plain-" + i, attack,
                    dsg(attack, plain, 1), 1e-12, false);
            List<Action> windowedActions = runChecked(engine(dsgWindowed.detector()), dsgWindowed.detector(), "pad-window-" + i, attack,
                    dsg(attack, windowed, 1), 1e-12, false);

            // Then: caught when any decision of the request acts
            caughtPlain += plainActions.stream().anyMatch(ModelOrganismTest::acted) ? 1 : 0;
            caughtWindowed += windowedActions.stream().anyMatch(ModelOrganismTest::acted) ? 1 : 0;
        }
        System.out.printf("padding attack (>= %d innocuous filler tokens): plain dsg caught %d/%d, windowed (W=%d) caught %d/%d%n", FILLER,
                caughtPlain, attacks, WINDOW, caughtWindowed, attacks);
        assertThat(attacks).isGreaterThanOrEqualTo(8);
        assertThat(caughtPlain).isZero();
        assertThat(caughtWindowed).isEqualTo(attacks);
    }

    /**
     * Fits a per-token L2 logistic regression (λ = 1e-2 on standardised inputs, the §8 baseline) on the
     * training requests' tokens, labelled by the organism's truth: whether a concept direction was
     * planted in the token. {@code input} picks the tokens' SAE codes or raw activations.
     */
    private static LogisticRegression.Model fitTokenProbe(Function<Request, float[][]> input, int d) {
        int n = training.stream().mapToInt(Request::tokens).sum();
        float[] x = new float[n * d]; // [n, d] row-major
        boolean[] y = new boolean[n];
        int row = 0;
        for (Request r : training) {
            float[][] in = input.apply(r);
            for (int t = 0; t < r.tokens(); t++) {
                System.arraycopy(in[t], 0, x, row * d, d);
                y[row++] = r.concept()[t];
            }
        }
        return LogisticRegression.fit(x, n, d, y, LogisticRegression.Options.defaults());
    }

    /** Writes the weights and a definition as files, as an operator would, and loads the definition. */
    private static DetectorDefinition writeProbe(Path dir, String kind, float[] w, float b) throws IOException, DetectorConfigException {
        String id = "organism-" + kind;
        ProbeWeights.write(dir.resolve(id + ".safetensors"), w, b);
        Path yaml = dir.resolve(id + ".yaml");
        Files.writeString(yaml, """
                id: %s
                sae: %s
                rule:
                  kind: %s
                  weights: %s.safetensors
                  fire_at: %s
                aggregate: mean
                policy:
                  alert_at: %s
                  bands:
                    - min: %s
                      action: flag
                    - min: %s
                      action: block
                """.formatted(id, SAE, kind, id, PROBE_FIRE_AT, PROBE_FLAG, PROBE_FLAG, PROBE_BLOCK));
        return DetectorDefinitions.load(yaml);
    }

    @Test
    void probeOverSaeCodesFiresOnThePlantedRequestsAndEveryScoreIsTheMeanOfIndependentSigmoids(@TempDir Path dir) throws Exception {
        // Given a probe trained on the training requests' codes, written in the probe rule's file format
        LogisticRegression.Model model = fitTokenProbe(Request::codes, Organism.D_SAE);
        float[] w = model.weightsAsFloats();
        float b = (float) model.bias();
        DetectorDefinition d = writeProbe(dir, "probe", w, b);

        // When: every chunk's score checked against the mean of σ(b + w · a_t) computed here
        Classified c = classify(d, 1e-9, false, r -> probeMean(r.codes(), w, b, PROBE_FIRE_AT));

        // Then
        int[] largest = IntStream.range(0, w.length).boxed().sorted((i, j) -> Float.compare(w[j], w[i])).limit(3)
                .mapToInt(Integer::intValue).toArray();
        System.out.println("probe (SAE codes, " + model.iterations() + " Newton steps, largest weights on " + Arrays.toString(largest)
                + ") on held-out organism requests: " + c);
        assertThat(largest).containsExactlyInAnyOrder(CONCEPT);
        assertThat(c.byLast().precision()).isGreaterThanOrEqualTo(0.95);
        assertThat(c.byLast().recall()).isGreaterThanOrEqualTo(0.95);
    }

    @Test
    void rawProbeOverActivationsFiresOnThePlantedRequestsAndEveryScoreIsTheMeanOfIndependentSigmoids(@TempDir Path dir) throws Exception {
        // Given a probe trained on the training requests' raw activations
        LogisticRegression.Model model = fitTokenProbe(Request::x, D_IN);
        float[] w = model.weightsAsFloats();
        float b = (float) model.bias();
        DetectorDefinition d = writeProbe(dir, "raw-probe", w, b);

        // When: the chunks carry their activations; every chunk's score checked against σ(b + w · x_t)
        Classified c = classify(d, 1e-9, true, r -> probeMean(r.x(), w, b, PROBE_FIRE_AT));

        // Then
        System.out.println("raw-probe (" + model.iterations() + " Newton steps) on held-out organism requests: " + c);
        assertThat(c.byLast().precision()).isGreaterThanOrEqualTo(0.95);
        assertThat(c.byLast().recall()).isGreaterThanOrEqualTo(0.95);
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
        int alerted = -1;

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
            double score = featuresMax(r, rule).scoreAfter().applyAsDouble(to);
            Decision decision = outcomes.get(k).decision();
            assertThat(outcomes.get(k).verdicts().get(0).score()).isCloseTo(score, within(1e-9));
            Action expected;
            if (score >= 2.5) {
                expected = Action.CLAMP;
                assertThat(decision.action()).isEqualTo(Action.CLAMP);
                assertThat(decision.vector()).contains(new VectorRef(SAE + "/" + lastTop, 0.0,
                        OptionalDouble.of(-0.5 * normSum / counted)));
            } else if (score >= 1.0 || triggered) {
                expected = Action.STEER;
                assertThat(decision.action()).isEqualTo(Action.STEER);
                assertThat(decision.tier()).contains(Tier.MEDIUM);
                assertThat(decision.vector()).contains(VectorRef.of(SAE + "/" + lastTop, -4.0));
                steers++;
            } else {
                expected = Action.ALLOW;
                assertThat(decision.action()).isEqualTo(Action.ALLOW);
            }
            // An alert at alert_at 1.0, then only when the action escalates (steer -> clamp).
            boolean alert = score >= 1.0 && PolicyReplay.SEVERITY.indexOf(expected) > alerted;
            alerted = alert ? PolicyReplay.SEVERITY.indexOf(expected) : alerted;
            assertThat(outcomes.get(k).verdicts().get(0).alert()).as("chunk %d alert", k).isEqualTo(alert);
            assertThat(outcomes.get(k).alerts()).hasSize(alert ? 1 : 0);
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
            } catch (io.saeguard.detectors.spi.DetectorConfigException e) {
                throw new AssertionError(e.getMessage(), e);
            }
        }
    }
}
