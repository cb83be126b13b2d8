package io.saeguard.sae.hub;

import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Where SAEs come from and where they are kept, read from the environment as {@code huggingface_hub} reads it:
 * {@code HF_ENDPOINT} (default {@code https://huggingface.co}, trailing {@code /} dropped), the token from
 * {@code HF_TOKEN} (or the older {@code HUGGING_FACE_HUB_TOKEN}), else the token file ({@code HF_TOKEN_PATH}, else
 * {@code $HF_HOME/token}, {@code HF_HOME} defaulting to {@code $XDG_CACHE_HOME/huggingface} or
 * {@code ~/.cache/huggingface}), and offline mode from {@code HF_HUB_OFFLINE} (or {@code TRANSFORMERS_OFFLINE}) set
 * to {@code 1}, {@code ON}, {@code YES} or {@code TRUE}. saeguard's cache is {@code $SAEGUARD_CACHE}, else
 * {@code ~/.cache/saeguard}; hub files go under its {@code hub/}. The token never appears in {@link #toString()}.
 */
public record HubSettings(URI endpoint, Optional<String> token, boolean offline, Path cacheRoot) {
    public static final String DEFAULT_ENDPOINT = "https://huggingface.co";
    private static final Set<String> TRUE = Set.of("1", "ON", "YES", "TRUE");

    public HubSettings {
        String e = endpoint.toString();
        while (e.endsWith("/")) {
            e = e.substring(0, e.length() - 1);
        }
        endpoint = URI.create(e);
        token = token.map(String::strip).filter(t -> !t.isEmpty());
    }

    /** The settings from {@code env}, the cache root from {@code $SAEGUARD_CACHE} or {@code ~/.cache/saeguard}. */
    public static HubSettings fromEnvironment(Map<String, String> env) {
        return fromEnvironment(env, Optional.empty());
    }

    /** The settings from {@code env}, with {@code cacheRoot} (a command's {@code --cache}) winning over the environment. */
    public static HubSettings fromEnvironment(Map<String, String> env, Optional<Path> cacheRoot) {
        String endpoint = nonBlank(env.get("HF_ENDPOINT")).orElse(DEFAULT_ENDPOINT);
        Optional<String> token = nonBlank(env.get("HF_TOKEN")).or(() -> nonBlank(env.get("HUGGING_FACE_HUB_TOKEN")))
                .or(() -> tokenFile(env));
        boolean offline = isTrue(env.get("HF_HUB_OFFLINE")) || isTrue(env.get("TRANSFORMERS_OFFLINE"));
        Path root = cacheRoot.or(() -> nonBlank(env.get("SAEGUARD_CACHE")).map(Path::of))
                .orElse(Path.of(System.getProperty("user.home"), ".cache", "saeguard"));
        return new HubSettings(URI.create(endpoint), token, offline, root);
    }

    /** The folder holding the hub's files: {@code <cacheRoot>/hub}. */
    public Path hubCache() {
        return cacheRoot.resolve("hub");
    }

    private static Optional<String> tokenFile(Map<String, String> env) {
        Path home = nonBlank(env.get("HF_HOME")).map(Path::of).orElseGet(() -> nonBlank(env.get("XDG_CACHE_HOME")).map(Path::of)
                .orElse(Path.of(System.getProperty("user.home"), ".cache")).resolve("huggingface"));
        Path file = nonBlank(env.get("HF_TOKEN_PATH")).map(Path::of).orElse(home.resolve("token"));
        try {
            return nonBlank(Files.readString(file, StandardCharsets.UTF_8));
        } catch (IOException e) {
            return Optional.empty(); // no token file (or an unreadable one): anonymous, as huggingface_hub does
        }
    }

    private static boolean isTrue(String v) {
        return v != null && TRUE.contains(v.strip().toUpperCase(Locale.ROOT));
    }

    private static Optional<String> nonBlank(String s) {
        return s == null || s.isBlank() ? Optional.empty() : Optional.of(s.strip());
    }

    @Override
    public String toString() {
        return "HubSettings[endpoint=" + endpoint + ", token=" + (token.isPresent() ? "(set)" : "(none)") + ", offline=" + offline
                + ", cacheRoot=" + cacheRoot + "]";
    }
}
