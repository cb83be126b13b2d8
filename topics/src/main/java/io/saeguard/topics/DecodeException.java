package io.saeguard.topics;

import java.util.Objects;

/**
 * A record on the wire could not be decoded. The message says what is wrong and where (byte offset,
 * tensor or field name), because it ends up in the {@code saeguard.error.message} header of the
 * dead-letter topic, where a person has to act on it without the original producer at hand.
 *
 * <p>{@link #reason()} is a small closed set, safe to use as a metric label.
 */
public final class DecodeException extends Exception {
    private static final long serialVersionUID = 1L;

    /** Why decoding failed; bounded, so usable as a metric label and a dead-letter header. */
    public enum Reason {
        /** Fewer bytes than the 8-byte safetensors header length prefix. */
        TRUNCATED_HEADER,
        /** The header length prefix points past the end of the record. */
        HEADER_LENGTH_PAST_END,
        /** The JSON header (or a JSON event) is not valid JSON or has the wrong shape. */
        MALFORMED_HEADER,
        /** A tensor declares a dtype this codec does not know. */
        UNKNOWN_DTYPE,
        /** A tensor's shape times its dtype size disagrees with its byte range, or the range is outside the data. */
        SIZE_MISMATCH,
        /** A required tensor is absent. */
        MISSING_TENSOR,
        /** A required metadata entry or JSON field is absent. */
        MISSING_FIELD,
        /** A field or tensor is present but its value is not allowed (wrong rank, bad number, bad enum). */
        INVALID_VALUE
    }

    private final Reason reason;

    public DecodeException(Reason reason, String message) {
        super(message);
        this.reason = Objects.requireNonNull(reason, "reason");
    }

    public DecodeException(Reason reason, String message, Throwable cause) {
        super(message, cause);
        this.reason = Objects.requireNonNull(reason, "reason");
    }

    public Reason reason() {
        return reason;
    }

    /** The reason in the lower-case form used in metric labels and dead-letter headers. */
    public String reasonLabel() {
        return reason.name().toLowerCase(java.util.Locale.ROOT);
    }
}
