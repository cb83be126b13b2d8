package io.saeguard.detectors.spi;

import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * How a detector turns its per-token scores into one score per chunk (YAML {@code aggregate:} with an
 * optional {@code window: W}). Only counted tokens take part (special tokens never count, see
 * {@link SpecialTokens}). A token <em>fires</em> when its token score reaches the rule's fire level
 * ({@code 1.0} for {@code features} and {@code dsg}, {@code fire_at} for the probes). Each request position counts
 * once: a chunk adds to the request's aggregates only the positions the detector has not counted yet (a redelivered
 * record, a prefill seen twice), so a chunk seen before leaves them as they are; {@code token}, which keeps no state,
 * scores every counted token of its chunk each time (docs/algorithms.md#aggregations).
 *
 * <ul>
 *   <li>{@code token}: the largest token score in this chunk; no state ({@code 0} for a chunk with no
 *       counted token).</li>
 *   <li>{@code max}: the largest token score of the request so far.</li>
 *   <li>{@code mean}: the mean token score over the request's counted tokens so far.</li>
 *   <li>{@code count}: how many of the request's tokens fired so far.</li>
 *   <li>{@code fraction}: fired tokens / counted tokens over the request so far. With {@code window: W},
 *       the windowed rate instead: the largest fraction of fired tokens over any {@code W} consecutive
 *       counted tokens seen so far (ρ over the last W tokens, kept at its peak: the score of a request never
 *       drops once a window was dense), so that benign filler cannot dilute it (docs/algorithms.md#windowed-dsg). While
 *       the request has fewer than {@code W} counted tokens, its fired tokens over {@code W} enter at the end
 *       of each chunk (the window's missing tokens count as not fired, so where a producer cuts chunks does
 *       not matter), and at the request's final chunk its plain fraction (a request shorter than {@code W}
 *       has no other rate). This is the aggregation of the {@code dsg} rule (ρ).</li>
 *   <li>{@code window} (requires {@code window: W}): the largest token score among the last {@code W}
 *       counted tokens, as of the end of this chunk.</li>
 * </ul>
 *
 * @param kind   which aggregation
 * @param window the window length in counted tokens, for {@code window} (required) and {@code fraction} (optional)
 */
public record Aggregation(Kind kind, OptionalInt window) {
    /** The aggregations; the YAML name is the lower-case constant name. */
    public enum Kind {
        TOKEN, MAX, MEAN, COUNT, FRACTION, WINDOW;

        /** The name used in YAML. */
        public String yamlName() {
            return name().toLowerCase(Locale.ROOT);
        }

        /** The constant for a YAML name, if any. */
        public static Optional<Kind> fromYamlName(String name) {
            for (Kind k : values()) {
                if (k.yamlName().equals(name)) {
                    return Optional.of(k);
                }
            }
            return Optional.empty();
        }
    }

    public Aggregation {
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(window, "window");
        if (window.isPresent() && window.getAsInt() < 1) {
            throw new IllegalArgumentException("window must be >= 1, got " + window.getAsInt());
        }
        if (kind == Kind.WINDOW && window.isEmpty()) {
            throw new IllegalArgumentException("aggregate 'window' needs a window length");
        }
        if (window.isPresent() && kind != Kind.WINDOW && kind != Kind.FRACTION) {
            throw new IllegalArgumentException("aggregate '" + kind.yamlName() + "' takes no window");
        }
    }

    public static Aggregation token() {
        return new Aggregation(Kind.TOKEN, OptionalInt.empty());
    }

    public static Aggregation max() {
        return new Aggregation(Kind.MAX, OptionalInt.empty());
    }

    public static Aggregation mean() {
        return new Aggregation(Kind.MEAN, OptionalInt.empty());
    }

    public static Aggregation count() {
        return new Aggregation(Kind.COUNT, OptionalInt.empty());
    }

    public static Aggregation fraction() {
        return new Aggregation(Kind.FRACTION, OptionalInt.empty());
    }

    /** Windowed fraction: the largest rate of fired tokens over any {@code w} consecutive counted tokens. */
    public static Aggregation fraction(int w) {
        return new Aggregation(Kind.FRACTION, OptionalInt.of(w));
    }

    /** The largest token score among the last {@code w} counted tokens. */
    public static Aggregation window(int w) {
        return new Aggregation(Kind.WINDOW, OptionalInt.of(w));
    }
}
