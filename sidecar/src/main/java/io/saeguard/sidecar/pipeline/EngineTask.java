package io.saeguard.sidecar.pipeline;

import io.saeguard.detectors.RequestSnapshot;
import java.util.List;

import io.saeguard.detectors.DetectorDefinition;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.function.Supplier;
import org.apache.kafka.common.TopicPartition;

/** Something for the engine thread to do: the closed set {@link EngineLoop} queues and dispatches, in queue order. */
sealed interface EngineTask {
    /** A consumed record for its SAE's batch. */
    record Encode(Work work) implements EngineTask {
    }

    /** A prompt event for the prompt model, then its SAE's batch. */
    record Prompt(PromptWork work) implements EngineTask {
    }

    /** An HTTP check of activations (already validated) for its SAE's batch. */
    record Check(HttpCheck check) implements EngineTask {
    }

    /** An HTTP check of a text: the prompt model, then its SAE's batch. */
    record CheckText(CheckRequest request, boolean decide, CompletableFuture<CheckResult> result) implements EngineTask {
    }

    /** Replace (or add) a detector once what was queued before is decided; completes with whether it existed. */
    record ReplaceDetector(DetectorDefinition definition, CompletableFuture<Boolean> replaced) implements EngineTask {
    }

    /** Remove a detector once what was queued before is decided; completes with whether it existed. */
    record RemoveDetector(String id, CompletableFuture<Boolean> removed) implements EngineTask {
    }

    /** A judge's verdict for the {@link JudgeCascade}. */
    record Verdict(VerdictWork work) implements EngineTask {
    }

    /** Drop the detector state of requests last seen on these (revoked) partitions. */
    record Forget(Set<TopicPartition> partitions) implements EngineTask {
    }

    /** Hold the restored state of requests of a newly assigned (or rewound) partition, before any of its records. */
    record Restore(TopicPartition partition, List<RequestSnapshot> snapshots) implements EngineTask {
    }

    /** Run a body once everything queued before is decided. */
    record Barrier(Supplier<Object> body, CompletableFuture<Object> result) implements EngineTask {
    }

    /**
     * The poll loop handed over every record of one poll: with {@code batching.flush_on_idle}, the batches are encoded now
     * if nothing else waits in the queue, instead of at their {@code max_delay}; if something does, the pipeline has a
     * backlog (the full-code sample goes back to its floor).
     */
    record PollEnd() implements EngineTask {
        static final PollEnd INSTANCE = new PollEnd();
    }

    /** Decide what is queued, then stop the thread. */
    record Stop() implements EngineTask {
    }
}
