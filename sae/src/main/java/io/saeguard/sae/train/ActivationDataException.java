package io.saeguard.sae.train;

import java.io.IOException;

/**
 * Training rows are unusable: a missing tensor, a wrong shape or width, an empty input, a NaN or
 * infinite value. The message names the file (and the row or tensor), so the user can fix the input.
 */
public final class ActivationDataException extends IOException {
    private static final long serialVersionUID = 1L;

    public ActivationDataException(String message) {
        super(message);
    }

    public ActivationDataException(String message, Throwable cause) {
        super(message, cause);
    }
}
