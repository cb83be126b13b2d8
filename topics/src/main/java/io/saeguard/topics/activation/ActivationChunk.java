package io.saeguard.topics.activation;

import io.saeguard.topics.events.Phase;
import io.saeguard.topics.safetensors.Tensor;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * One activation record (docs/architecture.md#the-wire-contract): up to N tokens of one request at one hook point, as the
 * residual-stream vectors {@code activations: [tokens, d_in]} plus the routing metadata. The tensor
 * is a view over the record's bytes, not a copy; F16/BF16 rows are widened to F32 only when read.
 *
 * <p>Immutable. Obtain one from {@link ActivationCodec#decode(byte[])}.
 */
public final class ActivationChunk {
    private final String requestId;
    private final Optional<String> model;
    private final Optional<String> hook;
    private final long position;
    private final Phase phase;
    private final boolean isFinal;
    private final Optional<String> tenant;
    private final Optional<String> sae;
    private final OptionalInt replyPartition;
    private final Tensor activations;
    private final Optional<Tensor> tokenIds;
    private final Optional<Tensor> specialMask;

    ActivationChunk(String requestId, Optional<String> model, Optional<String> hook, long position, Phase phase,
            boolean isFinal, Optional<String> tenant, Optional<String> sae, OptionalInt replyPartition, Tensor activations, Optional<Tensor> tokenIds,
            Optional<Tensor> specialMask) {
        this.requestId = Objects.requireNonNull(requestId, "requestId");
        this.model = Objects.requireNonNull(model, "model");
        this.hook = Objects.requireNonNull(hook, "hook");
        this.position = position;
        this.phase = Objects.requireNonNull(phase, "phase");
        this.isFinal = isFinal;
        this.tenant = Objects.requireNonNull(tenant, "tenant");
        this.sae = Objects.requireNonNull(sae, "sae");
        this.replyPartition = Objects.requireNonNull(replyPartition, "replyPartition");
        this.activations = Objects.requireNonNull(activations, "activations");
        this.tokenIds = Objects.requireNonNull(tokenIds, "tokenIds");
        this.specialMask = Objects.requireNonNull(specialMask, "specialMask");
    }

    public String requestId() {
        return requestId;
    }

    /** The model that produced the activations; used with {@link #hook()} to route to an SAE. */
    public Optional<String> model() {
        return model;
    }

    /** The hook point, e.g. {@code blocks.12.hook_resid_post}. */
    public Optional<String> hook() {
        return hook;
    }

    /** Index of this chunk's first token within the request. */
    public long position() {
        return position;
    }

    public Phase phase() {
        return phase;
    }

    /** True on the request's last chunk. */
    public boolean isFinal() {
        return isFinal;
    }

    public Optional<String> tenant() {
        return tenant;
    }

    /** An explicit SAE id; when absent the SAE is routed by model and hook. */
    public Optional<String> sae() {
        return sae;
    }

    /**
     * The partition of the decisions topic the producer asked for this request's decisions to go to (so an LLM server
     * reads only its own partition); absent: the partition the request id hashes to.
     */
    public OptionalInt replyPartition() {
        return replyPartition;
    }

    /** Number of tokens in this chunk. */
    public int tokens() {
        return (int) activations.dim(0);
    }

    /** Width of each activation vector. */
    public int dIn() {
        return (int) activations.dim(1);
    }

    /** The {@code [tokens, d_in]} tensor (F32, F16 or BF16). */
    public Tensor activations() {
        return activations;
    }

    /** Optional {@code token_ids: [tokens]} (I32 or I64). */
    public Optional<Tensor> tokenIds() {
        return tokenIds;
    }

    /** Optional {@code special_mask: [tokens]} (BOOL, U8, I32 or I64): nonzero marks a special token. */
    public Optional<Tensor> specialMask() {
        return specialMask;
    }

    /**
     * Copies rows {@code [fromToken, fromToken + count)} as F32 into {@code dst} starting at
     * {@code dstOffset}: the hot-path read that fills an engine batch.
     */
    public void copyRows(int fromToken, int count, float[] dst, int dstOffset) {
        activations.copyFloats((long) fromToken * dIn(), dst, dstOffset, count * dIn());
    }

    /** All activations as a fresh {@code float[tokens * d_in]}, row-major. */
    public float[] toFloatArray() {
        return activations.toFloatArray();
    }

    @Override
    public String toString() {
        // Never the activations themselves: they may be logged.
        return "ActivationChunk[request=" + requestId + ", model=" + model.orElse("-") + ", hook=" + hook.orElse("-")
                + ", position=" + position + ", tokens=" + tokens() + ", dIn=" + dIn() + ", phase=" + phase.wireName()
                + ", final=" + isFinal + sae.map(s -> ", sae=" + s).orElse("")
                + (replyPartition.isPresent() ? ", replyPartition=" + replyPartition.getAsInt() : "") + "]";
    }
}
