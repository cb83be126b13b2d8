package io.saeguard.sidecar.review;

/** Kafka did not take a review (the HTTP API answers 503 with {@code Retry-After}). */
public final class ReviewUnavailableException extends RuntimeException {
    public ReviewUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
