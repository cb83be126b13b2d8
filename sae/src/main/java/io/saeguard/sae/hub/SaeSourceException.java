package io.saeguard.sae.hub;

/**
 * An SAE named by release could not be found or fetched: an unknown release or SAE id, a release whose
 * format saeguard cannot load, a hub that cannot be reached (the message names the URL), a file whose size or
 * hash disagrees with the hub's, or an SAE missing from the cache in offline mode. The message says what to do.
 */
public final class SaeSourceException extends Exception {
    private static final long serialVersionUID = 1L;

    public SaeSourceException(String message) {
        super(message);
    }

    public SaeSourceException(String message, Throwable cause) {
        super(message, cause);
    }
}
