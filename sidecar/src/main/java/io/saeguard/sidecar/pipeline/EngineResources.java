package io.saeguard.sidecar.pipeline;

import io.saeguard.sae.Sae;
import io.saeguard.sae.engine.DeviceSae;
import io.saeguard.sae.engine.EngineOptions;
import io.saeguard.sae.engine.SaeEngine;
import io.saeguard.sidecar.config.SidecarConfig;
import io.saeguard.sidecar.metrics.Metrics;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import org.apache.kafka.common.utils.Time;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What the engine thread holds on the device: the DJL engine, every configured SAE loaded onto it, and the prompt
 * model when {@code prompts:} is configured. Opened and closed on the engine thread (DJL's threading contract).
 */
final class EngineResources implements AutoCloseable {
    private static final Logger LOGGER = LoggerFactory.getLogger(EngineResources.class);

    private final SaeEngine engine;
    private final Map<String, DeviceSae> loaded;
    private final Optional<PromptStage> prompts;

    private EngineResources(SaeEngine engine, Map<String, DeviceSae> loaded, Optional<PromptStage> prompts) {
        this.engine = engine;
        this.loaded = loaded;
        this.prompts = prompts;
    }

    /** Starts the engine and loads every SAE of the config (then the prompt model); on failure, frees what it took. */
    static EngineResources open(SidecarConfig config, Map<String, Sae> saes, EngineOptions options, Metrics metrics, Time time)
            throws Exception {
        SaeEngine engine = SaeEngine.start(options);
        Map<String, DeviceSae> loaded = new LinkedHashMap<>();
        try {
            for (SidecarConfig.SaeEntry entry : config.saes()) {
                Sae sae = saes.get(entry.id());
                long t0 = time.nanoseconds();
                loaded.put(entry.id(), engine.load(sae, entry.maxActive()));
                LOGGER.atInfo().addKeyValue("sae", entry.id()).addKeyValue("dIn", sae.config().dIn()).addKeyValue("dSae", sae.config().dSae())
                        .addKeyValue("architecture", sae.config().architecture().wireName()).addKeyValue("device", engine.deviceLabel())
                        .addKeyValue("ms", (time.nanoseconds() - t0) / 1_000_000).log("SAE loaded");
            }
            Optional<PromptStage> prompts = Optional.empty();
            if (config.prompts().isPresent()) {
                prompts = Optional.of(PromptStage.open(config.prompts().get(), options.cacheDir(), config.batching().maxDelay().toNanos(),
                        metrics, time));
            }
            return new EngineResources(engine, loaded, prompts);
        } catch (Exception | Error e) {
            loaded.values().forEach(DeviceSae::close);
            engine.close();
            throw e;
        }
    }

    /** The device's label, e.g. {@code cpu}. */
    String deviceLabel() {
        return engine.deviceLabel();
    }

    /** The loaded SAEs by id. */
    Map<String, DeviceSae> loaded() {
        return loaded;
    }

    /** The prompt stage, when the sidecar has a prompt model. */
    Optional<PromptStage> prompts() {
        return prompts;
    }

    @Override
    public void close() {
        loaded.values().forEach(DeviceSae::close);
        prompts.ifPresent(PromptStage::close);
        engine.close();
    }
}
