package io.saeguard.sidecar.pipeline;

/**
 * A detector change that could not be confirmed: the registry topic did not take it, or this replica did not apply
 * it in time. Not the caller's error; the HTTP API answers 503 with {@code Retry-After}. The change may still be
 * applied later (when it was published), so retrying the same definition is safe.
 */
public final class RegistryUnavailableException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public RegistryUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
