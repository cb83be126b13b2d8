package io.saeguard.sae.engine;

import ai.djl.engine.Engine;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Configures DJL before its first use: offline (no model-zoo or native downloads, no telemetry
 * call), a cache directory saeguard controls, the PyTorch engine, explicit thread counts. DJL reads
 * these as system properties when its engine class initialises, so {@link #configure} must run
 * before anything touches {@code ai.djl}; later calls with other values are rejected.
 */
public final class DjlRuntime {
    private static final Logger LOGGER = LoggerFactory.getLogger(DjlRuntime.class);
    private static EngineOptions configured;

    private DjlRuntime() {
    }

    /** Sets DJL's properties and starts its PyTorch engine; idempotent for equal options. */
    public static synchronized Engine configure(EngineOptions options) {
        if (configured != null) {
            if (!configured.cacheDir().equals(options.cacheDir()) || configured.intraOpThreads() != options.intraOpThreads()
                    || configured.interOpThreads() != options.interOpThreads()) {
                throw new IllegalStateException("DJL is already configured with " + configured + "; cannot switch to " + options);
            }
            return Engine.getEngine("PyTorch");
        }
        Path cache = options.cacheDir().toAbsolutePath();
        // Utils.isOfflineMode(): no downloads of natives or models; also turns off DJL's telemetry call.
        System.setProperty("ai.djl.offline", "true");
        System.setProperty("OPT_OUT_TRACKING", "true");
        System.setProperty("DJL_CACHE_DIR", cache.toString());
        System.setProperty("ENGINE_CACHE_DIR", cache.toString());
        System.setProperty("ai.djl.default_engine", "PyTorch");
        System.setProperty("ai.djl.pytorch.num_threads", Integer.toString(options.intraOpThreads()));
        System.setProperty("ai.djl.pytorch.num_interop_threads", Integer.toString(options.interOpThreads()));
        long t0 = System.nanoTime();
        Engine engine = Engine.getEngine("PyTorch");
        configured = options;
        LOGGER.atInfo().addKeyValue("engine", engine.getEngineName()).addKeyValue("version", engine.getVersion())
                .addKeyValue("gpus", engine.getGpuCount()).addKeyValue("cacheDir", cache)
                .addKeyValue("intraOpThreads", options.intraOpThreads()).addKeyValue("interOpThreads", options.interOpThreads())
                .addKeyValue("offline", true).addKeyValue("startMs", (System.nanoTime() - t0) / 1_000_000)
                .log("DJL engine ready");
        return engine;
    }
}
