package io.saeguard.topics.events;

import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * A piece of text for the sidecar to encode itself, from the {@code saeguard.prompts} topic
 * (docs/architecture.md#the-wire-contract; schema {@code topics/schemas/prompt.schema.json}). Keyed by request id on the wire.
 *
 * <p>{@link #toString()} shows the text's length, never the text, so events can be logged.
 *
 * @param requestId the request this text belongs to (non-empty); also the Kafka record key
 * @param model     the model the request is served by, used to route to an SAE
 * @param text      the text, possibly empty
 * @param role      who wrote the text; {@link Role#USER} when the wire omits it
 * @param ts        when the producer saw the text, epoch milliseconds, {@code >= 0}
 * @param tenant    tenant for multi-tenant deployments
 * @param phase     whether the text is prompt or generated output
 * @param replyPartition the partition of the decisions topic the request's decisions go to, chosen by the LLM server
 *                  that applies them; absent: the partition the request id's key hashes to
 */
public record PromptEvent(
        String requestId,
        Optional<String> model,
        String text,
        Role role,
        long ts,
        Optional<String> tenant,
        Optional<Phase> phase,
        OptionalInt replyPartition) {

    public PromptEvent {
        EventInvariants.nonEmpty(requestId, "request_id");
        EventInvariants.nonEmpty(model, "model");
        Objects.requireNonNull(text, "text");
        Objects.requireNonNull(role, "role");
        EventInvariants.nonNegative(ts, "ts");
        EventInvariants.nonEmpty(tenant, "tenant");
        Objects.requireNonNull(phase, "phase");
        EventInvariants.nonNegative(replyPartition, "reply_partition");
    }

    /** A user prompt with only the required fields. */
    public static PromptEvent of(String requestId, String text, long ts) {
        return new PromptEvent(requestId, Optional.empty(), text, Role.USER, ts, Optional.empty(), Optional.empty(), OptionalInt.empty());
    }

    public PromptEvent withModel(String model) {
        return new PromptEvent(requestId, Optional.of(model), text, role, ts, tenant, phase, replyPartition);
    }

    public PromptEvent withRole(Role role) {
        return new PromptEvent(requestId, model, text, role, ts, tenant, phase, replyPartition);
    }

    public PromptEvent withTenant(String tenant) {
        return new PromptEvent(requestId, model, text, role, ts, Optional.of(tenant), phase, replyPartition);
    }

    public PromptEvent withPhase(Phase phase) {
        return new PromptEvent(requestId, model, text, role, ts, tenant, Optional.of(phase), replyPartition);
    }

    public PromptEvent withReplyPartition(int partition) {
        return new PromptEvent(requestId, model, text, role, ts, tenant, phase, OptionalInt.of(partition));
    }

    @Override
    public String toString() {
        return "PromptEvent[requestId=" + requestId + ", model=" + model + ", text=" + EventInvariants.redacted(text)
                + ", role=" + role + ", ts=" + ts + ", tenant=" + tenant + ", phase=" + phase + ", replyPartition=" + replyPartition + "]";
    }
}
