package io.saeguard.sidecar.eval;

/** A labelled-text file that cannot be read: the message names the file, the line, the problem and the fix. */
public final class LabelledDataException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public LabelledDataException(String message) {
        super(message);
    }

    public LabelledDataException(String message, Throwable cause) {
        super(message, cause);
    }
}
