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
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Publishes a detector to the registry ({@link DetectorRegistry}) when its YAML file changes (the config's
 * {@code detectors} files), so every replica follows the edit. A file that no longer validates, or names an SAE this
 * sidecar does not load, is reported, nothing is published and the running version stays in force; a file whose
 * content the registry already holds is not published again. Runs on its own daemon thread; the swap itself happens
 * on each replica's engine thread when its registry reader applies the record.
 */
final class DetectorFileWatcher implements AutoCloseable {
    private static final Logger LOGGER = LoggerFactory.getLogger(DetectorFileWatcher.class);

    private final WatchService watch;
    private final Map<Path, Path> files = new HashMap<>(); // absolute file -> itself, by directory events
    private final Map<Path, Long> lastModified = new HashMap<>();
    private final EngineLoop engine;
    private final DetectorRegistry registry;
    private final Thread thread;

    DetectorFileWatcher(List<Path> detectorFiles, EngineLoop engine, DetectorRegistry registry) throws IOException {
        this.engine = engine;
        this.registry = registry;
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
        byte[] yaml;
        try {
            yaml = Files.readAllBytes(file);
            Path dir = file.getParent();
            def = DetectorDefinitions.parse(yaml, file.toString(), dir == null ? Path.of("") : dir);
            engine.validate(def);
        } catch (IOException | DetectorConfigException | InvalidRequestException e) {
            LOGGER.atError().addKeyValue("file", file).log("detector file changed but does not validate; nothing published, the running "
                    + "version stays: {}", e.getMessage());
            return;
        }
        if (registry.holdsExactly(def.id(), yaml)) {
            LOGGER.atDebug().addKeyValue("file", file).addKeyValue("detector", def.id()).log("the registry already holds this file's content");
            return;
        }
        registry.publish(def.id(), Optional.of(yaml), "file:" + file).whenComplete((existed, err) -> {
            if (err != null) {
                LOGGER.atError().addKeyValue("file", file).addKeyValue("detector", def.id())
                        .log("detector file changed but the change was not confirmed: {}", err.getMessage());
            } else {
                LOGGER.atInfo().addKeyValue("file", file).addKeyValue("detector", def.id()).addKeyValue("topic", registry.topic())
                        .log("detector file published to the registry and applied here");
            }
        });
    }

    @Override
    public void close() throws IOException {
        thread.interrupt();
        watch.close();
    }
}
