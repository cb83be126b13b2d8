package io.saeguard.detectors;

import io.saeguard.topics.events.Action;
import io.saeguard.topics.events.Tier;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalInt;
import java.util.OptionalLong;

/**
 * Maps a detector's score to an action (YAML {@code policy:}; docs/algorithms.md#steering-and-clamping).
 *
 * <p><b>Bands.</b> Each band covers scores from its {@code min} (inclusive) up to the next band's
 * {@code min} (exclusive); the last band is open above. Scores below the first band are {@code allow}.
 * Bands are sorted by {@code min}, strictly ascending.
 *
 * <p><b>Steering tiers</b> (the three tiers of "Breaking Bad Tokens", arXiv 2505.14536; docs/algorithms.md#steering-and-clamping):
 * <ul>
 *   <li>{@code low}: steer only where the feature fires: the band applies to a chunk only when at least
 *       one of its counted tokens fired; otherwise the next lower band that is not a low-tier steer
 *       applies (or allow).</li>
 *   <li>{@code medium}: the whole request once triggered: the first time the band is reached, the
 *       request's state latches it, and every later chunk of the request gets at least that steer,
 *       whatever its score.</li>
 *   <li>{@code high}: always on: every chunk of every request gets at least that steer from its first
 *       chunk on, whatever the score; its {@code min} only orders it among the bands.</li>
 * </ul>
 * A more severe band reached by the score (clamp, block) always wins over a latched or always-on steer.
 *
 * <p><b>Directions.</b> Steer and clamp decisions name a decoder direction, registry id
 * {@code "<sae>/<feature>"} ({@link DetectorEngine#steeringVectors()}): {@code vectorFeature} when set,
 * else the rule's feature that fired most strongly in the chunk (else the one that did last in the
 * request, else the rule's first named feature). Rules that name no feature (probes) need
 * {@code vectorFeature} for steer and clamp bands.
 *
 * @param alertAt       raise an alert when the score reaches this; absent: never alert
 * @param bands         score bands, sorted by {@code min} ascending; possibly empty (monitor only)
 * @param vectorFeature the feature whose decoder row steer and clamp decisions use, overriding the top firing one
 * @param fail          the verdict when this detector fails on a chunk or misses its deadline ({@link DetectorEngine}, "Failures")
 * @param deadlineMs    the most milliseconds from a chunk's production to this detector's verdict; absent: no deadline
 */
public record Policy(OptionalDouble alertAt, List<Band> bands, OptionalInt vectorFeature, FailMode fail,
        OptionalLong deadlineMs) {

    /** The verdict when a detector fails (error or deadline; {@link DetectorEngine}, "Failures"). */
    public enum FailMode {
        /** An error gives allow; a missed deadline keeps the verdict as computed. Counted either way. */
        OPEN,
        /** An error gives the most severe band's action; a missed deadline raises the verdict to at least it. */
        CLOSED
    }

    /**
     * One score band.
     *
     * @param min         lowest score of the band (inclusive), finite
     * @param action      what to do
     * @param tier        steering tier; required for {@code STEER}, absent otherwise
     * @param coefficient steer: the applier adds {@code coefficient·v} ({@code v} the unit decoder
     *                    direction); negative to suppress the feature. Required for {@code STEER}, absent otherwise
     * @param value       clamp: the component along {@code v} is set to {@code value × mean activation norm}
     *                    of the chunk's counted tokens (a fixed clamp constant does not transfer across
     *                    models, docs/algorithms.md#steering-and-clamping). Required for {@code CLAMP}, absent otherwise
     * @param escalation  YAML {@code action: escalate}: the band's decision is published as {@code FLAG} (so an applier that
     *                    knows nothing of judges stays safe) and the request goes to the judge
     *                    (docs/architecture.md#judge-cascade); present only with {@code action} {@code FLAG}
     */
    public record Band(double min, Action action, Optional<Tier> tier, OptionalDouble coefficient, OptionalDouble value,
            Optional<Escalation> escalation) {
        public Band {
            Objects.requireNonNull(escalation, "escalation");
            if (escalation.isPresent() && action != Action.FLAG) {
                throw new IllegalArgumentException("an escalate band decides flag until the judge answers, got " + action.wireName());
            }
            Objects.requireNonNull(action, "action");
            Objects.requireNonNull(tier, "tier");
            Objects.requireNonNull(coefficient, "coefficient");
            Objects.requireNonNull(value, "value");
            if (!Double.isFinite(min)) {
                throw new IllegalArgumentException("band min must be finite, got " + min);
            }
            boolean steer = action == Action.STEER;
            boolean clamp = action == Action.CLAMP;
            if (steer != tier.isPresent() || steer != coefficient.isPresent()) {
                throw new IllegalArgumentException("a band has a tier and a coefficient exactly when its action is steer");
            }
            if (clamp != value.isPresent()) {
                throw new IllegalArgumentException("a band has a value exactly when its action is clamp");
            }
            coefficient.ifPresent(c -> requireFinite(c, "coefficient"));
            value.ifPresent(v -> requireFinite(v, "value"));
        }

        /** A band without escalation. */
        public Band(double min, Action action, Optional<Tier> tier, OptionalDouble coefficient, OptionalDouble value) {
            this(min, action, tier, coefficient, value, Optional.empty());
        }

        /** An {@code escalate} band: flag now, the judge's verdict later, {@code fallback} after {@code timeoutMs} without one. */
        public static Band escalate(double min, long timeoutMs, Action fallback) {
            return new Band(min, Action.FLAG, Optional.empty(), OptionalDouble.empty(), OptionalDouble.empty(),
                    Optional.of(new Escalation(timeoutMs, fallback)));
        }

        public static Band of(double min, Action action) {
            return new Band(min, action, Optional.empty(), OptionalDouble.empty(), OptionalDouble.empty());
        }

        public static Band steer(double min, Tier tier, double coefficient) {
            return new Band(min, Action.STEER, Optional.of(tier), OptionalDouble.of(coefficient), OptionalDouble.empty());
        }

        public static Band clamp(double min, double value) {
            return new Band(min, Action.CLAMP, Optional.empty(), OptionalDouble.empty(), OptionalDouble.of(value));
        }
    }

    /**
     * What an {@code escalate} band does beyond flagging (docs/architecture.md#judge-cascade).
     *
     * @param timeoutMs YAML {@code judge_timeout_ms}: how long to wait for the judge's verdict, {@code > 0}
     * @param fallback  YAML {@code fallback}: the request's next decision when no verdict arrives in time; allow, flag or
     *                  block (a fallback has no direction to steer or clamp along, and neither has a judge)
     */
    public record Escalation(long timeoutMs, Action fallback) {
        public Escalation {
            Objects.requireNonNull(fallback, "fallback");
            if (timeoutMs <= 0) {
                throw new IllegalArgumentException("judge_timeout_ms must be > 0, got " + timeoutMs);
            }
            if (fallback != Action.ALLOW && fallback != Action.FLAG && fallback != Action.BLOCK) {
                throw new IllegalArgumentException("fallback must be allow, flag or block, got " + fallback.wireName());
            }
        }
    }

    public Policy {
        Objects.requireNonNull(alertAt, "alertAt");
        bands = List.copyOf(bands);
        Objects.requireNonNull(vectorFeature, "vectorFeature");
        Objects.requireNonNull(fail, "fail");
        Objects.requireNonNull(deadlineMs, "deadlineMs");
        alertAt.ifPresent(a -> requireFinite(a, "alert_at"));
        for (int i = 1; i < bands.size(); i++) {
            if (!(bands.get(i).min() > bands.get(i - 1).min())) {
                throw new IllegalArgumentException("band mins must be strictly ascending: " + bands.get(i - 1).min()
                        + " then " + bands.get(i).min());
            }
        }
        if (vectorFeature.isPresent() && vectorFeature.getAsInt() < 0) {
            throw new IllegalArgumentException("vector_feature must be >= 0, got " + vectorFeature.getAsInt());
        }
        if (deadlineMs.isPresent() && deadlineMs.getAsLong() <= 0) {
            throw new IllegalArgumentException("deadline_ms must be > 0, got " + deadlineMs.getAsLong());
        }
    }

    /** A policy with these bands, alerting at {@code alertAt}, fail-open, no deadline, no vector override. */
    public static Policy of(double alertAt, List<Band> bands) {
        return new Policy(OptionalDouble.of(alertAt), bands, OptionalInt.empty(), FailMode.OPEN, OptionalLong.empty());
    }

    /** Whether some band steers or clamps, so the detector needs a decoder direction. */
    public boolean intervenes() {
        return bands.stream().anyMatch(b -> b.action() == Action.STEER || b.action() == Action.CLAMP);
    }

    private static void requireFinite(double v, String what) {
        if (!Double.isFinite(v)) {
            throw new IllegalArgumentException(what + " must be finite, got " + v);
        }
    }
}
