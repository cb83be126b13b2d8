package io.saeguard.sidecar.pipeline;

import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.saeguard.detectors.DetectorDefinition;
import io.saeguard.sae.Sae;
import io.saeguard.sidecar.config.SidecarConfig;
import io.saeguard.sidecar.metrics.Metrics;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.utils.Time;

/**
 * The engine thread on its own, for checks only ({@code saeguard eval}): the same {@link EngineLoop} as the sidecar's
 * (batching, encode, {@link ChunkEvaluator}, detectors), with no Kafka behind it. It takes {@link #check}s and nothing
 * else: no record can be submitted, so nothing is ever published; its metrics go to a registry of its own.
 *
 * <p>Threading: {@link #check} may be called from any thread, as {@link EngineLoop#check}; {@link #close} once, last.
 */
public final class CheckEngine implements AutoCloseable {
    private final EngineLoop loop;
    private final Optional<String> promptSae;

    private CheckEngine(EngineLoop loop, Optional<String> promptSae) {
        this.loop = loop;
        this.promptSae = promptSae;
    }

    /**
     * Validates the configuration as the sidecar does ({@link Pipeline#validate}, the SAE serving the prompt model),
     * then loads the SAEs, the prompt model and the detectors on a new engine thread.
     *
     * @param saes        the configured SAEs, read from their files, by id
     * @param definitions the detectors
     * @throws IllegalArgumentException for a configuration the sidecar would refuse
     */
    public static CheckEngine start(SidecarConfig config, Map<String, Sae> saes, List<DetectorDefinition> definitions, Duration timeout)
            throws InterruptedException {
        Pipeline.validate(config, saes, definitions);
        Optional<String> promptSae = Optional.empty();
        if (config.prompts().isPresent()) {
            SidecarConfig.Prompts ps = config.prompts().get();
            promptSae = Optional.of(new SaeRouter(config.saes()).route(Optional.empty(), Optional.of(ps.modelName()), Optional.of(ps.hook()))
                    .orElseThrow(() -> new IllegalArgumentException("prompts: no configured SAE serves model '" + ps.modelName() + "' at hook '"
                            + ps.hook() + "'; give an SAE entry that model and hook (saes: " + String.join(", ", saes.keySet()) + ")")));
        }
        Metrics metrics = new Metrics(new PrometheusRegistry());
        OutputSink nowhere = new Nowhere();
        Executor noEgress = task -> {
            throw new IllegalStateException("a check-only engine publishes nothing");
        };
        EngineOutputs outputs = new EngineOutputs(new DecisionPublisher(nowhere, "none", "none", "none", "none", Optional.empty(), metrics),
                new DeadLetterPublisher(nowhere, "none", metrics), vectors -> { }, noEgress);
        EngineLoop loop = new EngineLoop(config, saes, definitions, Pipeline.engineOptions(config), outputs, metrics, new Generation(), Time.SYSTEM);
        try {
            loop.start(timeout);
            if (promptSae.isPresent()) {
                int dIn = saes.get(promptSae.get()).config().dIn();
                if (loop.promptModelWidth() != dIn) {
                    throw new IllegalArgumentException("the prompt model's hidden states have width " + loop.promptModelWidth() + " but SAE '"
                            + promptSae.get() + "' (serving " + config.prompts().get().modelName() + " " + config.prompts().get().hook()
                            + ") expects d_in " + dIn);
                }
            }
        } catch (InterruptedException | RuntimeException | Error e) {
            loop.close();
            throw e;
        }
        return new CheckEngine(loop, promptSae);
    }

    /** Decides a chunk or a text as the stream would; see {@link EngineLoop#check}. */
    public CompletableFuture<CheckResult> check(CheckRequest request) {
        return loop.check(request);
    }

    /** The SAE that serves the prompt model's hidden states (where a text check goes), when the config has {@code prompts:}. */
    public Optional<String> promptSae() {
        return promptSae;
    }

    /** The detectors, in evaluation order. */
    public List<DetectorDefinition> detectorDefinitions() {
        return loop.detectorDefinitions();
    }

    /** The device label, e.g. {@code cpu}. */
    public String deviceLabel() {
        return loop.deviceLabel();
    }

    /** Decides what was queued, stops the engine thread and frees the device. */
    @Override
    public void close() throws InterruptedException {
        loop.close();
    }

    /** The sink of an engine that has no records: an output reaching it is a bug, so it refuses loudly. */
    private static final class Nowhere implements OutputSink {
        @Override
        public void emit(Source source, List<ProducerRecord<String, byte[]>> outputs, Runnable onDelivered) {
            throw new IllegalStateException("a check-only engine publishes nothing");
        }

        @Override
        public boolean failed() {
            return false;
        }

        @Override
        public void reset() {
        }
    }
}
