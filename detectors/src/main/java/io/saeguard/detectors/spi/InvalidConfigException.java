package io.saeguard.detectors.spi;

import java.util.Objects;

/**
 * A rule config record refused its values: thrown by the compact constructor of a {@link RuleConfig} (or of a record
 * inside one) so that a definition bound from YAML fails with the key and the fix, not only a message. The key is
 * relative to the record that throws: {@code tau}, or {@code features[2].id} from the record holding the list.
 * {@code DetectorDefinitions} prefixes the record's own place in the file ({@code rule.}, {@code rule.features[0].}),
 * giving {@code toxicity.yaml: rule.features[0].threshold: must be > 0, found 0.0. Fix: write a positive activation
 * such as 5.0}. Code that builds a config directly sees an {@link IllegalArgumentException}.
 */
public final class InvalidConfigException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    private final String key;
    private final String problem;
    private final String fix;

    /**
     * @param key     the offending key relative to the throwing record, e.g. {@code threshold} or {@code features[1].id}
     * @param problem what is wrong, with the value found
     * @param fix     what to write instead
     */
    public InvalidConfigException(String key, String problem, String fix) {
        super(key + ": " + problem + ". Fix: " + fix);
        this.key = Objects.requireNonNull(key, "key");
        this.problem = Objects.requireNonNull(problem, "problem");
        this.fix = Objects.requireNonNull(fix, "fix");
    }

    /** The offending key relative to the record that threw. */
    public String key() {
        return key;
    }

    /** What is wrong. */
    public String problem() {
        return problem;
    }

    /** What to write instead. */
    public String fix() {
        return fix;
    }
}
