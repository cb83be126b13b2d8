package io.saeguard.sidecar.http;

import io.saeguard.sidecar.config.SidecarConfig;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * Who a request comes from, by its {@code Authorization} header: {@code Bearer <token>}, or, for a browser opening the
 * live page, {@code Basic} with the token as the password (any user name), so the browser's own login prompt works and
 * its {@code EventSource} carries the credentials. The candidate is hashed (SHA-256) and compared with every configured
 * token's digest with {@link MessageDigest#isEqual}, without stopping at the first match, so neither the time taken nor
 * the length of a token tells a caller how close it came. Thread-safe (immutable).
 */
final class Authenticator {
    /** The caller when authentication is off (no tokens, or {@code http.auth.mode: none}). */
    static final String ANONYMOUS = "anonymous";

    private final List<SidecarConfig.Token> tokens;
    private final List<byte[]> digests;

    Authenticator(List<SidecarConfig.Token> tokens) {
        this.tokens = List.copyOf(tokens);
        this.digests = this.tokens.stream().map(SidecarConfig.Token::sha256).toList();
    }

    /** The token the header carries, if it is one of the configured tokens. */
    Optional<SidecarConfig.Token> identify(Optional<String> authorization) {
        Optional<String> candidate = authorization.flatMap(Authenticator::credential);
        if (candidate.isEmpty()) {
            return Optional.empty();
        }
        byte[] digest = sha256(candidate.get());
        SidecarConfig.Token match = null;
        for (int i = 0; i < digests.size(); i++) {
            if (MessageDigest.isEqual(digest, digests.get(i)) && match == null) {
                match = tokens.get(i);
            }
        }
        return Optional.ofNullable(match);
    }

    /** The secret in an {@code Authorization} header: a bearer token, or a Basic password. */
    static Optional<String> credential(String header) {
        String h = header.strip();
        int space = h.indexOf(' ');
        if (space <= 0) {
            return Optional.empty();
        }
        String scheme = h.substring(0, space).toLowerCase(Locale.ROOT);
        String value = h.substring(space + 1).strip();
        if (value.isEmpty()) {
            return Optional.empty();
        }
        if (scheme.equals("bearer")) {
            return Optional.of(value);
        }
        if (scheme.equals("basic")) {
            try {
                String decoded = new String(Base64.getDecoder().decode(value), StandardCharsets.UTF_8);
                int colon = decoded.indexOf(':');
                return colon < 0 || colon == decoded.length() - 1 ? Optional.empty() : Optional.of(decoded.substring(colon + 1));
            } catch (IllegalArgumentException e) {
                return Optional.empty();
            }
        }
        return Optional.empty();
    }

    private static byte[] sha256(String secret) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(secret.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JRE", e);
        }
    }
}
