package io.saeguard.sidecar.pipeline;

import io.saeguard.detectors.RequestSnapshot;
import java.util.List;
import java.util.Set;
import org.apache.kafka.common.TopicPartition;

/**
 * What the poll thread hands to the engine: decoded, validated records and the partitions whose
 * request state must go. {@link EngineLoop} is the implementation; the poll loop's tests record
 * the calls instead.
 *
 * <p>Threading: the poll thread calls these methods, and only it; each call returns at once (it
 * queues a task for the engine thread, never waits for it). Tasks run on the engine thread in the
 * order they were queued, so a {@link #forget} after a {@link #submit} of the same partition drops
 * the state that submit built. The engine reports a record finished later, from its own or the
 * producer's threads, through the {@link OutputSink}, never through this interface.
 */
interface EngineIntake {
    /** Queues an activation record for its SAE's next batch. */
    void submit(Work work);

    /** Queues a prompt event for the prompt model, whose hidden states then go to the SAE. */
    void submitPrompt(PromptWork work);

    /** Queues a judge's verdict for the request's pending escalation (docs/architecture.md#judge-cascade). */
    void submitVerdict(VerdictWork work);

    /**
     * Says that every record of one poll was submitted: the engine may encode what it has batched without waiting for
     * {@code max_delay} when nothing else is queued ({@code batching.flush_on_idle}). Called only after a poll that
     * submitted something.
     */
    void pollEnd();

    /**
     * Drops the per-request state of requests last seen on these partitions: they were revoked or
     * lost, or rewound by a recovery, so their records will be processed again (here or elsewhere).
     */
    void forget(Set<TopicPartition> partitions);

    /**
     * Holds the detector state read back from the state topic for requests of {@code partition} (assigned, or rewound
     * by a recovery after a {@link #forget}); queued before any record of the partition, so in force when the first is
     * decided (docs/architecture.md#request-state).
     */
    void restore(TopicPartition partition, List<RequestSnapshot> snapshots);
}
