package io.saeguard.sidecar.pipeline;

import io.saeguard.sae.lm.HiddenStateModel;
import io.saeguard.topics.activation.ActivationChunk;
import java.util.Optional;
import java.util.OptionalInt;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;

/**
 * One record on its way through the SAE: the original record (kept for the dead-letter topic), the
 * {@link Generation} it was consumed in, the chunk's request, position, token ids, marked special tokens and
 * finality, the SAE it routes to, its activations (all finite: a decode thread checks an activation record's, the
 * {@link PromptStage} a prompt model's output, so the encode does not check them again; a record's stay in its own
 * bytes and dtype until the engine copies them into its batch, {@link Activations}) and their L2
 * norm per token (from that check's pass, {@link TokenNorms#ofFinite}), the tokens it holds in the in-flight count,
 * and — for a prompt event — its text and tokenization (for alert excerpts), and when the poll thread received it
 * (wall clock, ms; the {@code saeguard_stage_latency_seconds} split), and the partition of the decisions topic its producer
 * asked for the decision to go to ({@code reply_partition}, checked against the topic by the poll thread). Handed from the poll thread to the engine
 * thread and on to the producer's callbacks; never mutated after construction.
 */
record Work(ConsumerRecord<String, byte[]> record, long generation, String requestId, long position, int tokens, boolean isFinal,
        Optional<int[]> tokenIds, Optional<boolean[]> marked, String sae, Activations x, float[] norms, int counted,
        Optional<PromptText> prompt, long receivedMs, OptionalInt replyPartition) implements ChunkInput {

    /** The text of a prompt event and how the model tokenized it. */
    record PromptText(String text, HiddenStateModel.Result tokens) {
    }

    /** An activation record, received (polled and decoded) now: counted by its own tokens, no text. */
    Work(ConsumerRecord<String, byte[]> record, long generation, ActivationChunk chunk, String sae, float[] norms) {
        this(record, generation, chunk.requestId(), chunk.position(), chunk.tokens(), chunk.isFinal(),
                chunk.tokenIds().map(t -> t.toIntArray()), SpecialMask.marked(chunk.specialMask(), chunk.tokens()), sae,
                Activations.of(chunk), norms,
                chunk.tokens(), Optional.empty(), System.currentTimeMillis(), chunk.replyPartition());
    }

    TopicPartition partition() {
        return new TopicPartition(record.topic(), record.partition());
    }

    /** The record's own timestamp: a detector's deadline counts from when the record was produced. */
    @Override
    public long arrivedMs() {
        return record.timestamp();
    }

    Source source() {
        return new Source(partition(), record.offset(), generation, counted);
    }
}
