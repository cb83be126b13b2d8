package io.saeguard.detectors.spi;

import java.util.Objects;

/**
 * A detector definition is invalid. The message names the file, the key (a dotted path such as
 * {@code policy.bands[1].min}) and the fix, because a person reloading a detector at run time has to
 * act on it without reading the code: {@code toxicity.yaml: policy.bands[1].min: 1.0 is not above the
 * previous band's min 2.0. Fix: order the bands by min ascending, without duplicates}.
 */
public final class DetectorConfigException extends Exception {
    private static final long serialVersionUID = 1L;

    private final String file;
    private final String key;
    private final String fix;

    /**
     * @param file    the file (or other source name) the definition came from
     * @param key     dotted path of the offending key; empty for the document as a whole
     * @param problem what is wrong, including the value found where that helps
     * @param fix     what to write instead
     */
    public DetectorConfigException(String file, String key, String problem, String fix) {
        this(file, key, problem, fix, null);
    }

    public DetectorConfigException(String file, String key, String problem, String fix, Throwable cause) {
        super(message(file, key, problem, fix), cause);
        this.file = Objects.requireNonNull(file, "file");
        this.key = Objects.requireNonNull(key, "key");
        this.fix = Objects.requireNonNull(fix, "fix");
    }

    private static String message(String file, String key, String problem, String fix) {
        return file + ": " + (key.isEmpty() ? "" : key + ": ") + problem + ". Fix: " + fix;
    }

    /** The file or source name of the definition. */
    public String file() {
        return file;
    }

    /** Dotted path of the offending key, e.g. {@code rule.features[0].threshold}; empty for the whole document. */
    public String key() {
        return key;
    }

    /** What to write instead. */
    public String fix() {
        return fix;
    }
}
