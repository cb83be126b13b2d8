package io.saeguard.sidecar.config;

/** The sidecar's configuration is invalid; the message names the file, the key, and the fix. */
public final class ConfigException extends Exception {
    private static final long serialVersionUID = 1L;

    public ConfigException(String message) {
        super(message);
    }

    public ConfigException(String message, Throwable cause) {
        super(message, cause);
    }
}
