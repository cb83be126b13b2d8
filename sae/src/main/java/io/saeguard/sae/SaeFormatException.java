package io.saeguard.sae;

import java.nio.file.Path;

/**
 * An SAE could not be loaded: a missing or unreadable file, a tensor whose shape disagrees with
 * the config, an unknown architecture. The message names the file, the tensor, and the expected
 * versus found shape, so the user can tell a wrong path from a wrong format from a corrupt file.
 */
public final class SaeFormatException extends Exception {
    private static final long serialVersionUID = 1L;

    public SaeFormatException(String message) {
        super(message);
    }

    public SaeFormatException(String message, Throwable cause) {
        super(message, cause);
    }

    public static SaeFormatException in(Path file, String problem) {
        return new SaeFormatException(file + ": " + problem);
    }
}
