package io.saeguard.sidecar.pipeline;

import io.saeguard.detectors.spi.DetectorConfigException;
import io.saeguard.detectors.DetectorDefinition;
import io.saeguard.detectors.DetectorDefinitions;
import java.io.IOException;
import java.nio.file.ClosedWatchServiceException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardWatchEventKinds;
import java.nio.file.WatchEvent;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reloads a detector when its YAML file changes (the config's {@code detectors} files). A file that
 * no longer validates, or names an SAE this sidecar does not load, is reported and the running
 * version stays in force. Runs on its own daemon thread; the swap itself happens on the engine thread.
 */
final class DetectorFileWatcher implements AutoCloseable {
    private static final Logger LOGGER = LoggerFactory.getLogger(DetectorFileWatcher.class);

    private final WatchService watch;
    private final Map<Path, Path> files = new HashMap<>(); // absolute file -> itself, by directory events
    private final Map<Path, Long> lastModified = new HashMap<>();
    private final EngineLoop engine;
    private final Thread thread;

    DetectorFileWatcher(List<Path> detectorFiles, EngineLoop engine) throws IOException {
        this.engine = engine;
        this.watch = FileSystems.getDefault().newWatchService();
        for (Path f : detectorFiles) {
            Path abs = f.toAbsolutePath().normalize();
            files.put(abs, abs);
            lastModified.put(abs, modified(abs));
            abs.getParent().register(watch, StandardWatchEventKinds.ENTRY_MODIFY, StandardWatchEventKinds.ENTRY_CREATE);
        }
        this.thread = new Thread(this::run, "saeguard-detector-watch");
        thread.setDaemon(true);
        thread.start();
    }

    private static long modified(Path f) {
        try {
            return Files.getLastModifiedTime(f).toMillis();
        } catch (IOException e) {
            return -1;
        }
    }

    private void run() {
        try {
            while (true) {
                WatchKey key = watch.poll(1, TimeUnit.SECONDS);
                if (key == null) {
                    continue;
                }
                Path dir = (Path) key.watchable();
                for (WatchEvent<?> e : key.pollEvents()) {
                    if (e.context() instanceof Path name) {
                        Path changed = dir.resolve(name).toAbsolutePath().normalize();
                        if (files.containsKey(changed) && modified(changed) != lastModified.get(changed)) {
                            lastModified.put(changed, modified(changed));
                            reload(changed);
                        }
                    }
                }
                key.reset();
            }
        } catch (InterruptedException | ClosedWatchServiceException e) {
            // closing
        }
    }

    private void reload(Path file) {
        DetectorDefinition def;
        try {
            def = DetectorDefinitions.load(file);
        } catch (DetectorConfigException e) {
            LOGGER.atError().addKeyValue("file", file).log("detector file changed but does not validate; keeping the running version: {}",
                    e.getMessage());
            return;
        }
        engine.replaceDetector(def).whenComplete((existed, err) -> {
            if (err != null) {
                LOGGER.atError().addKeyValue("file", file).log("detector reload refused; keeping the running version: {}",
                        err.getCause() != null ? err.getCause().getMessage() : err.getMessage());
            } else {
                LOGGER.atInfo().addKeyValue("file", file).addKeyValue("detector", def.id()).log("detector reloaded from its file");
            }
        });
    }

    @Override
    public void close() throws IOException {
        thread.interrupt();
        watch.close();
    }
}
