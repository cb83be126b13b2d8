package io.saeguard.detectors;

import io.saeguard.detectors.spi.DetectorConfigException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/** Parses test YAML. */
final class Yaml {
    private Yaml() {}

    static DetectorDefinition definition(String yaml) {
        try {
            return DetectorDefinitions.parse(yaml.getBytes(StandardCharsets.UTF_8), "test.yaml");
        } catch (DetectorConfigException e) {
            throw new AssertionError(e.getMessage(), e);
        }
    }

    static DetectorDefinition definition(String yaml, Path baseDir) {
        try {
            return DetectorDefinitions.parse(yaml.getBytes(StandardCharsets.UTF_8), "test.yaml", baseDir);
        } catch (DetectorConfigException e) {
            throw new AssertionError(e.getMessage(), e);
        }
    }

    static DetectorConfigException error(String yaml) {
        try {
            DetectorDefinitions.parse(yaml.getBytes(StandardCharsets.UTF_8), "bad.yaml");
        } catch (DetectorConfigException e) {
            return e;
        }
        throw new AssertionError("expected a DetectorConfigException for:\n" + yaml);
    }

    /** A features detector over {@link TestChunks#SAE} with any-match on feature 3 (threshold 2) and the given tail. */
    static String features(String id, String aggregateAndPolicy) {
        return """
                id: %s
                sae: sae-test
                rule:
                  kind: features
                  match: any
                  features:
                    - id: 3
                      threshold: 2.0
                      label: three
                    - id: 5
                      threshold: 4.0
                %s""".formatted(id, aggregateAndPolicy);
    }
}
