package io.saeguard.sidecar.pipeline;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.function.ToIntFunction;

/**
 * Forms micro-batches per SAE, as an inference server does: a batch is ready when it holds
 * {@code maxTokens} tokens, or {@code maxDelayNanos} after its first item arrived, whichever comes first.
 * Pure: it never reads a clock (every call says what time it is) and does no I/O, so its rules are unit-tested.
 * Items keep their arrival order within a batch, and a batch is only ever one SAE's, which is what keeps
 * per-request order: a request's chunks all go to one SAE.
 *
 * <p>Not thread-safe: the engine thread owns it.
 *
 * @param <T> the queued item (a record's {@link Work} or an HTTP check)
 */
final class TokenBatcher<T> {

    /** A batch ready to encode: one SAE's items in arrival order, and their token count. */
    record Batch<T>(String sae, List<T> items, int tokens) {
        Batch {
            items = List.copyOf(items);
        }
    }

    private static final class Open<T> {
        final List<T> items = new ArrayList<>();
        int tokens;
        long deadlineNanos;
    }

    private final int maxTokens;
    private final long maxDelayNanos;
    private final ToIntFunction<T> tokensOf;
    private final Map<String, Open<T>> open = new LinkedHashMap<>();

    /**
     * @param maxTokens     a batch is ready once it holds at least this many tokens ({@code >= 1})
     * @param maxDelayNanos a batch is ready this long after its first item arrived ({@code >= 0})
     * @param tokensOf      an item's token count
     */
    TokenBatcher(int maxTokens, long maxDelayNanos, ToIntFunction<T> tokensOf) {
        if (maxTokens < 1) {
            throw new IllegalArgumentException("maxTokens must be >= 1, got " + maxTokens);
        }
        if (maxDelayNanos < 0) {
            throw new IllegalArgumentException("maxDelayNanos must be >= 0, got " + maxDelayNanos);
        }
        this.maxTokens = maxTokens;
        this.maxDelayNanos = maxDelayNanos;
        this.tokensOf = Objects.requireNonNull(tokensOf, "tokensOf");
    }

    /** Adds an item to its SAE's batch; returns that batch when this item filled it to the token budget. */
    Optional<Batch<T>> add(String sae, T item, long nowNanos) {
        Open<T> b = open.computeIfAbsent(sae, k -> new Open<>());
        if (b.items.isEmpty()) {
            b.deadlineNanos = nowNanos + maxDelayNanos;
        }
        b.items.add(item);
        b.tokens += tokensOf.applyAsInt(item);
        return b.tokens >= maxTokens ? Optional.of(take(sae, b)) : Optional.empty();
    }

    /** The batches whose deadline has passed at {@code nowNanos}, taken out of the batcher. */
    List<Batch<T>> due(long nowNanos) {
        List<Batch<T>> out = new ArrayList<>();
        open.forEach((sae, b) -> {
            if (!b.items.isEmpty() && nowNanos - b.deadlineNanos >= 0) {
                out.add(take(sae, b));
            }
        });
        return out;
    }

    /** Every waiting batch, taken out of the batcher (shutdown, revocation). */
    List<Batch<T>> drainAll() {
        List<Batch<T>> out = new ArrayList<>();
        open.forEach((sae, b) -> {
            if (!b.items.isEmpty()) {
                out.add(take(sae, b));
            }
        });
        return out;
    }

    /** The earliest deadline of a waiting batch, or {@link Long#MAX_VALUE} when nothing waits. */
    long nextDeadlineNanos() {
        long next = Long.MAX_VALUE;
        for (Open<T> b : open.values()) {
            if (!b.items.isEmpty() && b.deadlineNanos < next) {
                next = b.deadlineNanos;
            }
        }
        return next;
    }

    /** Whether no item waits. */
    boolean isEmpty() {
        for (Open<T> b : open.values()) {
            if (!b.items.isEmpty()) {
                return false;
            }
        }
        return true;
    }

    private Batch<T> take(String sae, Open<T> b) {
        Batch<T> batch = new Batch<>(sae, b.items, b.tokens);
        b.items.clear();
        b.tokens = 0;
        return batch;
    }
}
