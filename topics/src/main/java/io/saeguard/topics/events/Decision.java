package io.saeguard.topics.events;

import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalLong;

/**
 * What the sidecar decided about a request after one activation record or prompt, published to
 * {@code saeguard.decisions} and consumed by the applier in the LLM server (docs/architecture.md#the-wire-contract; schema
 * {@code topics/schemas/decision.schema.json}).
 *
 * <p>Build one with {@link #builder(String, long, Action, long)}; absent optional fields are empty,
 * never null. Steering and clamping name a direction in the {@code saeguard.steering} registry through
 * {@link #vector()}.
 *
 * @param requestId the request decided on (non-empty); also the Kafka record key
 * @param seq       sequence number of this decision within its request, {@code >= 0}; orders a
 *                  request's decisions
 * @param action    what the applier should do
 * @param detector  name of the detector that produced the decision; empty for an allow where nothing fired
 * @param tier      severity band chosen by the detector's policy
 * @param score     the detector's score
 * @param position  token position in the request the decision applies from, {@code >= 0}
 * @param features  the SAE features behind the decision, most important first; possibly empty
 * @param vector    the steering/clamp direction, for {@link Action#STEER} and {@link Action#CLAMP}
 * @param reason    a short human-readable explanation
 * @param latencyMs time from the event's production to this decision, milliseconds, {@code >= 0}
 * @param ts        when the decision was made, epoch milliseconds, {@code >= 0}
 */
public record Decision(
        String requestId,
        long seq,
        Action action,
        Optional<String> detector,
        Optional<Tier> tier,
        OptionalDouble score,
        long position,
        List<FeatureRef> features,
        Optional<VectorRef> vector,
        Optional<String> reason,
        OptionalDouble latencyMs,
        OptionalLong ts) {

    public Decision {
        EventInvariants.nonEmpty(requestId, "request_id");
        EventInvariants.nonNegative(seq, "seq");
        Objects.requireNonNull(action, "action");
        EventInvariants.nonEmpty(detector, "detector");
        Objects.requireNonNull(tier, "tier");
        EventInvariants.finite(score, "score");
        EventInvariants.nonNegative(position, "position");
        features = EventInvariants.immutable(features, "features");
        Objects.requireNonNull(vector, "vector");
        Objects.requireNonNull(reason, "reason");
        EventInvariants.finiteNonNegative(latencyMs, "latency_ms");
        EventInvariants.nonNegative(ts, "ts");
    }

    /** Starts a decision with its required fields; everything else starts absent (features empty). */
    public static Builder builder(String requestId, long seq, Action action, long position) {
        return new Builder(requestId, seq, action, position);
    }

    /** A builder pre-filled with this decision's fields. */
    public Builder toBuilder() {
        Builder b = new Builder(requestId, seq, action, position);
        b.detector = detector;
        b.tier = tier;
        b.score = score;
        b.features = features;
        b.vector = vector;
        b.reason = reason;
        b.latencyMs = latencyMs;
        b.ts = ts;
        return b;
    }

    /** Mutable and single-threaded; {@link #build()} validates. */
    public static final class Builder {
        private final String requestId;
        private final long seq;
        private final Action action;
        private final long position;
        private Optional<String> detector = Optional.empty();
        private Optional<Tier> tier = Optional.empty();
        private OptionalDouble score = OptionalDouble.empty();
        private List<FeatureRef> features = List.of();
        private Optional<VectorRef> vector = Optional.empty();
        private Optional<String> reason = Optional.empty();
        private OptionalDouble latencyMs = OptionalDouble.empty();
        private OptionalLong ts = OptionalLong.empty();

        private Builder(String requestId, long seq, Action action, long position) {
            this.requestId = requestId;
            this.seq = seq;
            this.action = action;
            this.position = position;
        }

        public Builder detector(String detector) {
            this.detector = Optional.of(detector);
            return this;
        }

        public Builder tier(Tier tier) {
            this.tier = Optional.of(tier);
            return this;
        }

        public Builder score(double score) {
            this.score = OptionalDouble.of(score);
            return this;
        }

        public Builder features(List<FeatureRef> features) {
            this.features = Objects.requireNonNull(features, "features");
            return this;
        }

        public Builder vector(VectorRef vector) {
            this.vector = Optional.of(vector);
            return this;
        }

        public Builder reason(String reason) {
            this.reason = Optional.of(reason);
            return this;
        }

        public Builder latencyMs(double latencyMs) {
            this.latencyMs = OptionalDouble.of(latencyMs);
            return this;
        }

        public Builder ts(long ts) {
            this.ts = OptionalLong.of(ts);
            return this;
        }

        public Decision build() {
            return new Decision(
                    requestId, seq, action, detector, tier, score, position, features, vector, reason, latencyMs, ts);
        }
    }
}
