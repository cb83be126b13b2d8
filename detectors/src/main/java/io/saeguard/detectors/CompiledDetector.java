package io.saeguard.detectors;

import io.saeguard.detectors.spi.Aggregation;
import io.saeguard.detectors.spi.Aggregation.Kind;
import io.saeguard.detectors.Policy.Band;
import io.saeguard.detectors.spi.TokenRule;
import io.saeguard.topics.events.Action;
import io.saeguard.topics.events.AlertFeature;
import io.saeguard.topics.events.Decision;
import io.saeguard.topics.events.FeatureRef;
import io.saeguard.topics.events.Tier;
import io.saeguard.topics.events.VectorRef;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * A definition ready to run: the rule built, the policy flattened into arrays, the steering directions
 * read. Owns per-chunk scratch (the feature tally and the last evaluation), so it is used by the
 * engine thread only.
 *
 * <p>Size: about 500 lines, one class on purpose: a detector's per-chunk evaluation (rule scores, special-token
 * masking, aggregation over the request, policy bands, alert and steering fields, fail mode and deadline) is one hot
 * path over one detector's state, and the aggregation kinds share its scratch buffers.
 */
final class CompiledDetector {
    /** How many features a decision lists at most. */
    static final int DECISION_FEATURES = 8;
    /** How many firing positions an alert lists at most. */
    static final int ALERT_POSITIONS = 512;

    private enum Why { BAND, LATCHED, ALWAYS_ON, LOW_TIER_IDLE, FAILED_OPEN, FAILED_CLOSED, LATE_CLOSED }

    final DetectorDefinition definition;
    final String id;
    final String sae;
    final TokenRule rule;
    final int slot;
    final int generation;
    /** Of the definition ({@link DetectorEngine#fingerprint}): a request snapshot's state is restored only into the same one. */
    final long fingerprint;
    private final Kind aggregate;
    private final int window;
    private final double fireLevel;
    private final int[] specialIds;
    private final boolean skipFirst;
    private final double[] bandMin;
    private final Action[] bandAction;
    private final Tier[] bandTier;
    private final double[] bandCoefficient;
    private final double[] bandValue;
    private final Policy.Escalation[] bandEscalation; // null where the band does not escalate
    private final int alwaysOnBand;
    private final int mostSevereBand; // -1 without bands
    private final boolean failClosed;
    private final long deadlineMs; // Long.MAX_VALUE without a deadline
    private final double alertAt;
    private final int[] named;
    private final int[] namedSorted;
    private final int vectorFeature;
    /** Vector id → unit direction, for the features this detector may steer or clamp along. */
    final Map<String, float[]> vectors;
    private final Map<Integer, String> vectorIds;
    private final TopFeatures tally = new TopFeatures(32);
    private int checkedDSae = -1;
    private int checkedDIn = -1;

    // The last evaluation (one chunk).
    double score;
    Action action = Action.ALLOW;
    private int band = -1;
    private int effectiveBand = -1;
    private Why why = Why.BAND;
    private boolean chunkFired;
    private double meanNorm;
    private int directionFeature = -1;
    private Verdict.Failure failure; // null unless the last evaluation failed
    private String failedWith = ""; // the exception class of an error, for the reason

    private CompiledDetector(DetectorDefinition d, TokenRule rule, int slot, int generation, Map<String, float[]> vectors) {
        this.definition = d;
        this.id = d.id();
        this.sae = d.sae();
        this.rule = rule;
        this.slot = slot;
        this.generation = generation;
        this.fingerprint = DetectorEngine.fingerprint(d);
        this.aggregate = d.aggregate().kind();
        this.window = d.aggregate().window().orElse(0);
        this.fireLevel = rule.fireLevel();
        this.specialIds = d.specialTokens().ids().stream().mapToInt(Integer::intValue).toArray();
        this.skipFirst = d.specialTokens().skipFirst();
        List<Band> bands = d.policy().bands();
        int n = bands.size();
        bandMin = new double[n];
        bandAction = new Action[n];
        bandTier = new Tier[n];
        bandCoefficient = new double[n];
        bandValue = new double[n];
        bandEscalation = new Policy.Escalation[n];
        int always = -1;
        for (int i = 0; i < n; i++) {
            Band b = bands.get(i);
            bandMin[i] = b.min();
            bandAction[i] = b.action();
            bandTier[i] = b.tier().orElse(null);
            bandCoefficient[i] = b.coefficient().orElse(0);
            bandValue[i] = b.value().orElse(0);
            bandEscalation[i] = b.escalation().orElse(null);
            if (b.action() == Action.STEER && b.tier().orElseThrow() == Tier.HIGH && always < 0) {
                always = i;
            }
        }
        alwaysOnBand = always;
        int severe = -1;
        for (int i = 0; i < n; i++) {
            if (severe < 0 || bandAction[i].ordinal() >= bandAction[severe].ordinal()) {
                severe = i;
            }
        }
        mostSevereBand = severe;
        failClosed = d.policy().fail() == Policy.FailMode.CLOSED;
        deadlineMs = d.policy().deadlineMs().orElse(Long.MAX_VALUE);
        alertAt = d.policy().alertAt().orElse(Double.NaN);
        named = rule.namedFeatures();
        namedSorted = named.clone();
        Arrays.sort(namedSorted);
        vectorFeature = d.policy().vectorFeature().orElse(-1);
        this.vectors = vectors;
        vectorIds = new HashMap<>();
        for (String vid : vectors.keySet()) {
            vectorIds.put(Integer.parseInt(vid.substring(vid.lastIndexOf('/') + 1)), vid);
        }
    }

    /**
     * Builds a detector, reading its steering directions.
     *
     * @throws IllegalArgumentException if the definition cannot run (no direction for a steer band, a
     *     direction that cannot be read, a raw probe whose width disagrees with the SAE's)
     */
    static CompiledDetector compile(DetectorDefinition d, DecoderDirections directions, int slot, int generation) {
        TokenRule rule;
        try {
            rule = DetectorKinds.create(d.rule());
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("detector '" + d.id() + "': cannot build its rule: " + e.getMessage(), e);
        }
        DetectorKinds.aggregation(d.rule()).ifPresent(own -> {
            if (!own.equals(d.aggregate())) {
                throw new IllegalArgumentException("detector '" + d.id() + "': rule kind '" + d.rule().kind()
                        + "' aggregates with " + own + ", but the definition says " + d.aggregate());
            }
        });
        DetectorDefinitions.interventionProblem(d, rule).ifPresent(p -> {
            throw new IllegalArgumentException("detector '" + d.id() + "': " + p + "; set policy.vector_feature");
        });
        if (rule.needsActivations()) {
            int dIn;
            try {
                dIn = directions.dIn(d.sae());
            } catch (IllegalArgumentException unknown) {
                dIn = -1; // checked at the first chunk instead
            }
            if (dIn >= 0) {
                try {
                    rule.checkActivationWidth(dIn);
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException("detector '" + d.id() + "': " + e.getMessage(), e);
                }
            }
        }
        Map<String, float[]> vectors = new LinkedHashMap<>();
        if (d.policy().intervenes()) {
            int[] candidates = d.policy().vectorFeature().isPresent()
                    ? new int[] {d.policy().vectorFeature().getAsInt()} : rule.namedFeatures();
            for (int f : candidates) {
                vectors.put(DetectorEngine.vectorId(d.sae(), f), unitDirection(d, directions, f));
            }
        }
        return new CompiledDetector(d, rule, slot, generation, vectors);
    }

    private static float[] unitDirection(DetectorDefinition d, DecoderDirections directions, int feature) {
        float[] v;
        try {
            v = new float[directions.dIn(d.sae())];
            directions.direction(d.sae(), feature, v);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("detector '" + d.id() + "': cannot read the decoder direction of feature "
                    + feature + " of SAE '" + d.sae() + "': " + e.getMessage(), e);
        }
        double norm = 0;
        for (float x : v) {
            norm += (double) x * x;
        }
        norm = Math.sqrt(norm);
        if (!(norm > 0) || !Double.isFinite(norm)) {
            throw new IllegalArgumentException("detector '" + d.id() + "': the decoder direction of feature " + feature
                    + " of SAE '" + d.sae() + "' has norm " + norm + " and cannot be normalised");
        }
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (v[i] / norm);
        }
        return v;
    }

    /** Checks the chunk fits the rule before any state changes. */
    void checkChunk(Chunk chunk) {
        int dSae = chunk.codes().dSae();
        if (dSae != checkedDSae) {
            try {
                rule.checkDictionary(dSae);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("detector '" + id + "' does not fit SAE '" + sae + "': " + e.getMessage(), e);
            }
            checkedDSae = dSae;
        }
        if (rule.needsActivations()) {
            if (chunk.activations().isEmpty()) {
                throw new IllegalArgumentException("detector '" + id + "' reads raw activations, but the chunk of request "
                        + chunk.requestId() + " carries none (DetectorEngine.needsActivations(\"" + sae + "\") is true)");
            }
            if (chunk.dIn() != checkedDIn) {
                try {
                    rule.checkActivationWidth(chunk.dIn());
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException("detector '" + id + "': " + e.getMessage(), e);
                }
                checkedDIn = chunk.dIn();
            }
        }
    }

    /** Scores the chunk, updates the request's state for this detector and applies the policy. */
    void evaluate(EngineInput in, DetectorState st, double[] scores) {
        failure = null;
        in.mask(specialIds, skipFirst);
        tally.clear();
        rule.score(in, scores, tally);
        Chunk chunk = in.chunk();
        float[] norms = chunk.activationNorms();
        int tokens = in.tokens();
        double chunkMax = Double.NEGATIVE_INFINITY;
        int counted = 0;
        int fired = 0;
        double normSum = 0;
        for (int t = 0; t < tokens; t++) {
            if (!in.counted(t)) {
                continue;
            }
            double s = scores[t];
            if (!Double.isFinite(s)) {
                throw new IllegalArgumentException("detector '" + id + "': token score " + s + " at position "
                        + (chunk.position() + t) + " of request " + chunk.requestId() + " (non-finite codes or activations?)");
            }
            counted++;
            normSum += norms[t];
            chunkMax = Math.max(chunkMax, s);
            if (s >= fireLevel) {
                fired++;
            }
        }
        // Every score is finite: fold the tokens whose positions the request has not counted yet into its aggregates,
        // so a redelivered record or a prefill seen twice counts once (docs/algorithms.md#aggregations). The chunk's
        // own figures above (token score, fired, mean norm) stay over all its counted tokens: they describe the chunk.
        long first = chunk.position();
        CountedPositions seen = st.positions;
        if (!seen.containsAll(first, first + tokens)) {
            for (int t = 0; t < tokens; t++) {
                if (in.counted(t) && !seen.contains(first + t)) {
                    st.add(scores[t], scores[t] >= fireLevel, aggregate);
                }
            }
            seen.add(first, first + tokens);
        }
        chunkFired = fired > 0;
        double value = switch (aggregate) {
            case TOKEN -> counted > 0 ? chunkMax : 0;
            case MAX -> st.counted > 0 ? st.max : 0;
            case MEAN -> st.counted > 0 ? st.sum / st.counted : 0;
            case COUNT -> st.fired;
            case FRACTION -> window > 0 ? st.windowedRate(chunk.isFinal()) : (st.counted > 0 ? st.fired / (double) st.counted : 0);
            case WINDOW -> st.windowMax();
        };
        score = rule.finalScore(value);
        if (!Double.isFinite(score)) {
            throw new IllegalArgumentException("detector '" + id + "': score " + score + " is not finite");
        }
        if (counted > 0) {
            meanNorm = normSum / counted;
            st.lastMeanNorm = meanNorm;
        } else if (!Double.isNaN(st.lastMeanNorm)) {
            meanNorm = st.lastMeanNorm;
        } else {
            meanNorm = meanOf(norms, tokens);
        }
        int top = strongestNamed();
        if (top >= 0) {
            st.lastTopFeature = top;
        }
        applyPolicy(st);
    }

    /**
     * The detector could not evaluate the chunk ({@code checkChunk} or {@code evaluate} threw): its verdict is its
     * fail mode's. Open: allow. Closed: the most severe band's action (allow when it has no bands), along the
     * direction it would use otherwise, a clamp scaled by the request's last mean norm (else this chunk's).
     */
    void fail(Chunk chunk, DetectorState st, RuntimeException cause) {
        failure = new Verdict.Failure(Verdict.Failure.ERROR, String.valueOf(cause.getMessage()));
        failedWith = cause.getClass().getSimpleName();
        score = Double.NaN;
        chunkFired = false;
        tally.clear();
        if (failClosed) {
            meanNorm = !Double.isNaN(st.lastMeanNorm) ? st.lastMeanNorm : meanOf(chunk.activationNorms(), chunk.tokens());
            settle(mostSevereBand, Why.FAILED_CLOSED, st);
        } else {
            settle(-1, Why.FAILED_OPEN, st);
        }
    }

    /**
     * Applies the deadline to the last evaluation: the chunk reached the detector {@code ageMs} after it was
     * produced. Past {@code deadline_ms} the detector has failed its deadline: fail-closed raises the action to
     * at least the most severe band's; fail-open keeps the verdict as computed (a late verdict is still the
     * best one there is, and replacing it with allow would hide what the detector found). Either way the miss
     * is reported ({@link #failure()}).
     */
    void applyDeadline(long ageMs, DetectorState st) {
        if (failure != null || ageMs <= deadlineMs) {
            return;
        }
        failure = new Verdict.Failure(Verdict.Failure.DEADLINE, ageMs + " ms > " + deadlineMs + " ms");
        if (failClosed && severity(mostSevereBand) > severity(effectiveBand)) {
            settle(mostSevereBand, Why.LATE_CLOSED, st);
        }
    }

    /** How the last evaluation failed, or null when it met its deadline without an error. */
    Verdict.Failure failure() {
        return failure;
    }

    private void settle(int eff, Why reason, DetectorState st) {
        effectiveBand = eff;
        why = reason;
        action = eff >= 0 ? bandAction[eff] : Action.ALLOW;
        directionFeature = -1;
        if (action == Action.STEER || action == Action.CLAMP) {
            directionFeature = vectorFeature >= 0 ? vectorFeature
                    : st.lastTopFeature >= 0 ? st.lastTopFeature : named[0];
        }
    }

    private static double meanOf(float[] values, int n) {
        double sum = 0;
        for (int t = 0; t < n; t++) {
            sum += values[t];
        }
        return n > 0 ? sum / n : 0;
    }

    private int strongestNamed() {
        int n = tally.sort();
        for (int r = 0; r < n; r++) {
            int f = tally.featureAt(r);
            if (Arrays.binarySearch(namedSorted, f) >= 0) {
                return f;
            }
        }
        return -1;
    }

    private void applyPolicy(DetectorState st) {
        band = -1;
        for (int i = bandMin.length - 1; i >= 0; i--) {
            if (score >= bandMin[i]) {
                band = i;
                break;
            }
        }
        if (band >= 0 && bandAction[band] == Action.STEER && bandTier[band] == Tier.MEDIUM
                && severity(band) >= severity(st.latchedBand)) {
            st.latchedBand = band;
        }
        int eff = band;
        why = Why.BAND;
        if (eff >= 0 && bandAction[eff] == Action.STEER && bandTier[eff] == Tier.LOW && !chunkFired) {
            // Low tier steers only where the feature fires (docs/algorithms.md#steering-and-clamping, tier low).
            int lower = -1;
            for (int i = eff - 1; i >= 0; i--) {
                if (!(bandAction[i] == Action.STEER && bandTier[i] == Tier.LOW)) {
                    lower = i;
                    break;
                }
            }
            eff = lower;
            why = Why.LOW_TIER_IDLE;
        }
        if (severity(st.latchedBand) > severity(eff)) {
            eff = st.latchedBand;
            why = Why.LATCHED;
        }
        if (severity(alwaysOnBand) > severity(eff)) {
            eff = alwaysOnBand;
            why = Why.ALWAYS_ON;
        }
        settle(eff, why, st);
    }

    private int severity(int b) {
        return b < 0 ? -1 : bandAction[b].ordinal();
    }

    boolean alertDue(DetectorState st) {
        return !Double.isNaN(alertAt) && score >= alertAt && action.ordinal() > st.alertedLevel; // false for a NaN score
    }

    /** The escalation of the band that decided the last chunk, when it is an {@code escalate} band (and the detector did not fail). */
    Optional<Policy.Escalation> escalation() {
        return effectiveBand >= 0 && failure == null && why != Why.FAILED_OPEN && why != Why.FAILED_CLOSED
                ? Optional.ofNullable(bandEscalation[effectiveBand]) : Optional.empty();
    }

    Optional<Tier> tier() {
        return action == Action.STEER ? Optional.of(bandTier[effectiveBand]) : Optional.empty();
    }

    /** This detector's decision for the last evaluated chunk. */
    Decision decision(Chunk chunk, long seq, long nowMillis) {
        Decision.Builder b = Decision.builder(chunk.requestId(), seq, action, chunk.position())
                .detector(id).features(features()).reason(reason()).ts(nowMillis);
        if (Double.isFinite(score)) {
            b.score(score);
        }
        tier().ifPresent(b::tier);
        if (action == Action.STEER) {
            b.vector(VectorRef.of(vectorIds.get(directionFeature), bandCoefficient[effectiveBand]));
        } else if (action == Action.CLAMP) {
            b.vector(VectorRef.of(vectorIds.get(directionFeature), 0.0).withValue(bandValue[effectiveBand] * meanNorm));
        }
        return b.build();
    }

    private List<FeatureRef> features() {
        int n = Math.min(tally.sort(), DECISION_FEATURES);
        List<FeatureRef> out = new ArrayList<>(n);
        for (int r = 0; r < n; r++) {
            out.add(new FeatureRef(sae, tally.featureAt(r), tally.valueAt(r)));
        }
        return out;
    }

    /** Absolute positions of the counted tokens that fired in the last chunk (at most {@link #ALERT_POSITIONS}). */
    List<Long> firingPositions(EngineInput in, double[] scores) {
        List<Long> out = new ArrayList<>();
        for (int t = 0; t < in.tokens() && out.size() < ALERT_POSITIONS; t++) {
            if (in.counted(t) && scores[t] >= fireLevel) {
                out.add(in.position() + t);
            }
        }
        return out;
    }

    AlertFeature annotate(FeatureRef ref) {
        AlertFeature a = AlertFeature.of(ref);
        Optional<String> label = rule.label(ref.id());
        Optional<String> explanation = rule.explanation(ref.id());
        if (label.isPresent()) {
            a = a.withLabel(label.get());
        }
        if (explanation.isPresent()) {
            a = a.withExplanation(explanation.get());
        }
        return a;
    }

    /** Short reason: numbers and feature ids only, never text from the request. */
    private String reason() {
        String agg = definition.rule().kind().equals("dsg") ? "rho/tau" : aggregate.name().toLowerCase(Locale.ROOT);
        StringBuilder r = new StringBuilder(80).append(id).append(": ");
        if (Double.isFinite(score)) {
            r.append("score ").append(String.format(Locale.ROOT, "%.4g", score)).append(" (").append(agg).append(')');
        } else {
            r.append("no score");
        }
        switch (why) {
            case BAND -> r.append(effectiveBand >= 0 ? " >= band " + bandMin[effectiveBand] : " below every band");
            case LATCHED -> r.append(", steer latched since the request first reached band ").append(bandMin[effectiveBand]);
            case ALWAYS_ON -> r.append(", high-tier steer is always on");
            case LOW_TIER_IDLE -> r.append(", low-tier steer idle (nothing fired in this chunk)")
                    .append(effectiveBand >= 0 ? ", band " + bandMin[effectiveBand] : "");
            case FAILED_OPEN -> r.append(", detector failed (").append(failedWith).append("), fail open");
            case FAILED_CLOSED -> r.append(", detector failed (").append(failedWith).append("), fail closed");
            case LATE_CLOSED -> r.append(", deadline missed (").append(failure.message()).append("), fail closed");
            default -> throw new IllegalStateException();
        }
        if (failure != null && failure.kind().equals(Verdict.Failure.DEADLINE) && why != Why.LATE_CLOSED) {
            r.append(", deadline missed (").append(failure.message()).append(failClosed ? "), already at the most severe band"
                    : "), fail open keeps the verdict");
        }
        r.append(" -> ").append(action.wireName());
        escalation().ifPresent(e -> r.append(" (escalated to the judge: ").append(e.timeoutMs()).append(" ms, then ")
                .append(e.fallback().wireName()).append(')'));
        tier().ifPresent(t -> r.append('/').append(t.wireName()));
        if (directionFeature >= 0) {
            r.append(" along feature ").append(directionFeature);
        }
        return r.toString();
    }
}
