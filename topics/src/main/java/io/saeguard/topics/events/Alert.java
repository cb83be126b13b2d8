package io.saeguard.topics.events;

import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Function;

/**
 * A decision worth a person's attention, published to {@code saeguard.alerts} for review and
 * alerting (docs/architecture.md#the-wire-contract; schema {@code topics/schemas/alert.schema.json}). On the wire it is the
 * decision's fields plus what a reviewer needs: features with labels and explanations, the token
 * positions where the detector fired, a text excerpt when the event carried text, and where the
 * activations came from.
 *
 * <p>Unlike a decision, an alert always names its detector and score. Its {@link #features()} are the
 * decision's features, in the same order, annotated. Build one with {@link #forDecision(Decision)}.
 * {@link #toString()} shows the excerpt's length, never its text.
 *
 * @param decision  the decision alerted on; it must have a detector and a score
 * @param features  the decision's features, annotated; same refs in the same order as {@code decision.features()}
 * @param positions token positions in the request where the detector fired, each {@code >= 0}
 * @param excerpt   the text around those positions, only when the event carried text
 * @param highlights where the firing tokens sit in {@code excerpt}, in order; empty without an excerpt
 * @param hook      the hook point the activations were read at, e.g. {@code blocks.12.hook_resid_post}
 * @param model     the model that served the request
 * @param sae       the SAE the detector reads
 */
public record Alert(
        Decision decision,
        List<AlertFeature> features,
        List<Long> positions,
        Optional<String> excerpt,
        List<ExcerptSpan> highlights,
        Optional<String> hook,
        Optional<String> model,
        Optional<String> sae) {

    public Alert {
        Objects.requireNonNull(decision, "decision");
        if (decision.detector().isEmpty()) {
            throw new IllegalArgumentException(
                    "an alert needs a detector, but decision " + decision.seq() + " of request "
                            + decision.requestId() + " has none");
        }
        if (decision.score().isEmpty()) {
            throw new IllegalArgumentException(
                    "an alert needs a score, but decision " + decision.seq() + " of request "
                            + decision.requestId() + " has none");
        }
        features = EventInvariants.immutable(features, "features");
        List<FeatureRef> refs = features.stream().map(AlertFeature::ref).toList();
        if (!refs.equals(decision.features())) {
            throw new IllegalArgumentException(
                    "alert features must be the decision's features in the same order: decision has "
                            + decision.features() + ", alert has " + refs);
        }
        positions = EventInvariants.immutable(positions, "positions");
        positions.forEach(p -> EventInvariants.nonNegative(p, "positions[]"));
        Objects.requireNonNull(excerpt, "excerpt");
        highlights = EventInvariants.immutable(highlights, "highlights");
        int excerptLength = excerpt.map(String::length).orElse(0);
        for (ExcerptSpan h : highlights) {
            if (h.end() > excerptLength) {
                throw new IllegalArgumentException("excerpt highlight [" + h.start() + ", " + h.end() + ") lies beyond the excerpt's "
                        + excerptLength + " characters");
            }
        }
        EventInvariants.nonEmpty(hook, "hook");
        EventInvariants.nonEmpty(model, "model");
        EventInvariants.nonEmpty(sae, "sae");
    }

    /**
     * Starts an alert for a decision that has a detector and a score; its features start
     * unlabelled and every alert-only field starts absent.
     */
    public static Builder forDecision(Decision decision) {
        return new Builder(decision);
    }

    public String requestId() {
        return decision.requestId();
    }

    public long seq() {
        return decision.seq();
    }

    public Action action() {
        return decision.action();
    }

    /** Always present on an alert. */
    public String detector() {
        return decision.detector().orElseThrow();
    }

    /** Always present on an alert. */
    public double score() {
        return decision.score().orElseThrow();
    }

    @Override
    public String toString() {
        return "Alert[decision=" + decision + ", features=" + features + ", positions=" + positions
                + ", excerpt=" + excerpt.map(EventInvariants::redacted) + ", highlights=" + highlights + ", hook=" + hook + ", model=" + model
                + ", sae=" + sae + "]";
    }

    /** Mutable and single-threaded; {@link #build()} validates. */
    public static final class Builder {
        private final Decision decision;
        private List<AlertFeature> features;
        private List<Long> positions = List.of();
        private Optional<String> excerpt = Optional.empty();
        private List<ExcerptSpan> highlights = List.of();
        private Optional<String> hook = Optional.empty();
        private Optional<String> model = Optional.empty();
        private Optional<String> sae = Optional.empty();

        private Builder(Decision decision) {
            this.decision = Objects.requireNonNull(decision, "decision");
            this.features = decision.features().stream().map(AlertFeature::of).toList();
        }

        /**
         * Annotates each of the decision's features, e.g. from a label bundle. The function gets each
         * {@link FeatureRef} in order and must return an {@link AlertFeature} with that same ref.
         */
        public Builder labels(Function<FeatureRef, AlertFeature> annotate) {
            Objects.requireNonNull(annotate, "annotate");
            this.features = decision.features().stream().map(annotate).toList();
            return this;
        }

        public Builder positions(List<Long> positions) {
            this.positions = Objects.requireNonNull(positions, "positions");
            return this;
        }

        public Builder excerpt(String excerpt) {
            this.excerpt = Optional.of(excerpt);
            return this;
        }

        /** Where the firing tokens sit in the excerpt (set the excerpt too). */
        public Builder highlights(List<ExcerptSpan> highlights) {
            this.highlights = Objects.requireNonNull(highlights, "highlights");
            return this;
        }

        public Builder hook(String hook) {
            this.hook = Optional.of(hook);
            return this;
        }

        public Builder model(String model) {
            this.model = Optional.of(model);
            return this;
        }

        public Builder sae(String sae) {
            this.sae = Optional.of(sae);
            return this;
        }

        public Alert build() {
            return new Alert(decision, features, positions, excerpt, highlights, hook, model, sae);
        }
    }
}
