package io.saeguard.topics.events;

import java.util.Objects;
import java.util.OptionalDouble;

/**
 * A direction in the {@code saeguard.steering} registry that a steer or clamp decision applies, so
 * decisions stay small and appliers cache vectors (docs/architecture.md#the-wire-contract). Wire form
 * {@code {"id", "coefficient", "value"?}}.
 *
 * @param id          registry key of the vector {@code v} (non-empty)
 * @param coefficient steer: the applier adds {@code coefficient·v} to the residual stream
 * @param value       clamp: the value the component along {@code v} is set to; absent for steering
 */
public record VectorRef(String id, double coefficient, OptionalDouble value) {
    public VectorRef {
        EventInvariants.nonEmpty(id, "vector.id");
        EventInvariants.finite(coefficient, "vector.coefficient");
        EventInvariants.finite(Objects.requireNonNull(value, "vector.value"), "vector.value");
    }

    /** A vector reference without a clamp value. */
    public static VectorRef of(String id, double coefficient) {
        return new VectorRef(id, coefficient, OptionalDouble.empty());
    }

    /** A copy carrying a clamp value. */
    public VectorRef withValue(double clampValue) {
        return new VectorRef(id, coefficient, OptionalDouble.of(clampValue));
    }
}
