package io.saeguard.sidecar.pipeline;

import java.util.Map;
import java.util.concurrent.Executor;
import java.util.function.Consumer;

/**
 * Where the engine's results go: decisions and alerts (and judge requests and judged decisions), dead letters, steering vectors (published before a decision can
 * name them), and the executor that publishes a batch's outcomes off the engine thread, in order ({@link Egress}).
 */
record EngineOutputs(DecisionPublisher decisions, DeadLetterPublisher deadLetters, Consumer<Map<String, float[]>> steering,
        Executor egress) {
}
