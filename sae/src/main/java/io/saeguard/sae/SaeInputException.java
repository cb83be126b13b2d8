package io.saeguard.sae;

/**
 * Activations handed to an SAE are unusable: wrong width, or non-finite values. The message names
 * the SAE and, for non-finite values, the token and dimension, so a dead-lettered record says
 * which token of which request was bad.
 */
public final class SaeInputException extends Exception {
    private static final long serialVersionUID = 1L;

    /** Bounded reason, usable as a metric label. */
    public enum Reason {
        WRONG_D_IN,
        NON_FINITE,
        EMPTY
    }

    private final Reason reason;
    private final int token;

    public SaeInputException(Reason reason, int token, String message) {
        super(message);
        this.reason = reason;
        this.token = token;
    }

    public Reason reason() {
        return reason;
    }

    /** Index of the offending token within the batch handed to the encoder, or -1. */
    public int token() {
        return token;
    }
}
