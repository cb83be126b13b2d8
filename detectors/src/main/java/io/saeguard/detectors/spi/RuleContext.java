package io.saeguard.detectors.spi;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Objects;

/**
 * Where a {@code rule:} mapping came from, for {@link DetectorKind#resolve}: its file (for messages), its key path in
 * that file and the directory that relative file references resolve against. Immutable.
 *
 * @param file    the definition's file or source name, e.g. {@code toxicity.yaml} or {@code PUT /v1/detectors/toxicity}
 * @param path    the rule's key path, {@code rule}
 * @param baseDir the definition file's directory (the working directory for a definition that is not a file)
 */
public record RuleContext(String file, String path, Path baseDir) {
    public RuleContext {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(path, "path");
        Objects.requireNonNull(baseDir, "baseDir");
    }

    /** An error about {@code key} under the rule, naming the file, the key path and the fix. */
    public DetectorConfigException error(String key, String problem, String fix) {
        return new DetectorConfigException(file, path.isEmpty() ? key : path + "." + key, problem, fix);
    }

    /**
     * The existing regular file that {@code value}, the text of {@code key}, names: resolved against {@link #baseDir()}
     * when relative.
     *
     * @throws DetectorConfigException naming the key when there is no such file
     */
    public Path existingFile(String key, String value) throws DetectorConfigException {
        Path p = baseDir.resolve(value).normalize();
        if (!Files.isRegularFile(p)) {
            throw error(key, "file '" + value + "' not found (resolved to " + p.toAbsolutePath() + ")",
                    "give a path relative to the definition's directory, or an absolute path, to an existing file");
        }
        return p;
    }
}
