package io.saeguard.sidecar.pipeline;

/**
 * A request (HTTP body, detector definition) that cannot be served as given: the caller's error, answered with
 * 400 and this message. Any other exception reaching the HTTP API is the sidecar's own failure (500).
 */
public final class InvalidRequestException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public InvalidRequestException(String message) {
        super(message);
    }

    public InvalidRequestException(String message, Throwable cause) {
        super(message, cause);
    }
}
