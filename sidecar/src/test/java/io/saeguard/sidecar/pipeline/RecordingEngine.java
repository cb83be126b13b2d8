package io.saeguard.sidecar.pipeline;

import io.saeguard.detectors.RequestSnapshot;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.apache.kafka.common.TopicPartition;

/** An {@link EngineIntake} that only records what the poll loop handed it, in order. */
final class RecordingEngine implements EngineIntake {
    final List<Work> submitted = new ArrayList<>();
    final List<PromptWork> prompts = new ArrayList<>();
    final List<Set<TopicPartition>> forgotten = new ArrayList<>();
    final List<VerdictWork> verdicts = new ArrayList<>();
    final List<String> restored = new ArrayList<>();
    /** Submits and restores in the order they came: "submit partition@offset", "restore partition:snapshots". */
    final List<String> events = new ArrayList<>();
    /** Submissions so far at each {@link #pollEnd}. */
    final List<Integer> pollEnds = new ArrayList<>();

    @Override
    public void submit(Work work) {
        submitted.add(work);
        events.add("submit " + work.partition() + "@" + work.record().offset());
    }

    @Override
    public void submitPrompt(PromptWork work) {
        prompts.add(work);
    }

    @Override
    public void submitVerdict(VerdictWork work) {
        verdicts.add(work);
    }

    @Override
    public void pollEnd() {
        pollEnds.add(submitted.size() + prompts.size() + verdicts.size());
    }

    @Override
    public void forget(Set<TopicPartition> partitions) {
        forgotten.add(Set.copyOf(partitions));
    }

    @Override
    public void restore(TopicPartition partition, List<RequestSnapshot> snapshots) {
        restored.add(partition + ":" + snapshots.size());
        events.add("restore " + partition + ":" + snapshots.size());
    }

    /** The offsets handed over so far, in order, as "partition@offset/generation". */
    List<String> handed() {
        return submitted.stream().map(w -> w.record().partition() + "@" + w.record().offset() + "/g" + w.generation()).toList();
    }
}
