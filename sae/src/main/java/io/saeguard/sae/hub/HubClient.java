package io.saeguard.sae.hub;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The few Hugging Face Hub calls saeguard needs, over {@code java.net.http}, laid out as {@code huggingface_hub}
 * lays them out: a revision's commit ({@code GET {endpoint}/api/models/{repo}/revision/{revision}}, its
 * {@code sha}), a folder's files ({@code GET {endpoint}/api/models/{repo}/tree/{commit}/{path}?recursive=true},
 * paged by a {@code Link: <...>; rel="next"} header) and a file's bytes
 * ({@code GET {endpoint}/{repo}/resolve/{commit}/{path}}). The token goes as {@code Authorization: Bearer} to the
 * endpoint's host only: redirects are followed here, and one to another host (the CDN serving LFS files with a
 * signed URL) gets no token, as in {@code huggingface_hub}'s {@code file_download}. Downloads resume a
 * {@code .part} file with a {@code Range} request, are checked against the tree's size and SHA-256 (LFS) or git
 * blob id (others) and renamed into place only when they match. Thread-safe (no mutable state).
 */
final class HubClient {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int MAX_REDIRECTS = 10;
    private static final Pattern CONTENT_RANGE = Pattern.compile("bytes (\\d+)-(\\d+)/(\\d+|\\*)");
    private static final Pattern NEXT_LINK = Pattern.compile("<([^>]+)>\\s*;\\s*rel=\"?next\"?");
    private static final Pattern COMMIT = Pattern.compile("[0-9a-f]{40}");

    /** Progress of one file's download; called on the downloading thread. */
    interface Progress {
        void update(String path, long done, long total);
    }

    private final HubSettings settings;
    private final HttpClient http;

    HubClient(HubSettings settings) {
        this.settings = settings;
        this.http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(15)).followRedirects(HttpClient.Redirect.NEVER).build();
    }

    /** The commit a revision (branch, tag or commit) names now. */
    String commit(String repoId, String revision) throws SaeSourceException {
        if (COMMIT.matcher(revision).matches()) {
            return revision;
        }
        URI uri = revisionUrl(repoId, revision);
        HttpResponse<InputStream> r = send(uri, Optional.empty(), "the commit of revision '" + revision + "' of " + repoId);
        JsonNode body = readJson(r, uri);
        String sha = body.path("sha").asText("");
        if (!COMMIT.matcher(sha).matches()) {
            throw new SaeSourceException(uri + " answered without a commit sha ('sha' is '" + sha + "')");
        }
        return sha;
    }

    /** Every file under {@code folder} (recursively) at {@code commit}. */
    List<HubFile> tree(String repoId, String commit, String folder) throws SaeSourceException {
        List<HubFile> files = new ArrayList<>();
        URI uri = URI.create(settings.endpoint() + "/api/models/" + repoId + "/tree/" + encode(commit, false)
                + (folder.isEmpty() ? "" : "/" + encode(folder, false)) + "?recursive=true");
        while (true) {
            HttpResponse<InputStream> r = send(uri, Optional.empty(), "the files under '" + folder + "' in " + repoId);
            JsonNode body = readJson(r, uri);
            if (!body.isArray()) {
                throw new SaeSourceException(uri + " answered with " + body.getNodeType() + ", expected a JSON array of files");
            }
            for (JsonNode f : body) {
                if (!"file".equals(f.path("type").asText())) {
                    continue;
                }
                JsonNode lfs = f.path("lfs");
                Optional<String> sha = lfs.hasNonNull("oid") ? Optional.of(lfs.get("oid").asText()) : Optional.empty();
                files.add(new HubFile(f.path("path").asText(), f.path("size").asLong(-1), f.path("oid").asText(""), sha));
            }
            Optional<URI> next = r.headers().firstValue("Link").flatMap(HubClient::next).map(uri::resolve);
            if (next.isEmpty()) {
                return files;
            }
            uri = next.get();
        }
    }

    /** The URL {@link #commit} asks. */
    URI revisionUrl(String repoId, String revision) {
        return URI.create(settings.endpoint() + "/api/models/" + repoId + "/revision/" + encode(revision, false));
    }

    /** The URL of a file's bytes. */
    URI fileUrl(String repoId, String commit, String path) {
        return URI.create(settings.endpoint() + "/" + repoId + "/resolve/" + encode(commit, false) + "/" + encode(path, true));
    }

    /**
     * Downloads {@code file} to {@code target}: appends to {@code target + ".part"} from where an earlier attempt
     * stopped ({@code Range: bytes=N-}; a server answering 200 instead restarts it), checks size and hash, then
     * renames the part into place. A mismatch deletes the part and fails; nothing is left at {@code target}.
     */
    void download(String repoId, String commit, HubFile file, Path target, Progress progress) throws SaeSourceException {
        Path part = target.resolveSibling(target.getFileName() + ".part");
        URI url = fileUrl(repoId, commit, file.path());
        try {
            Files.createDirectories(target.getParent());
            try (FileChannel channel = FileChannel.open(part, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
                FileLock lock = channel.tryLock();
                if (lock == null) {
                    throw new SaeSourceException(part + " is being written by another process (it holds the file's lock); wait for it "
                            + "or stop it");
                }
                long have = channel.size();
                if (have > file.size()) {
                    channel.truncate(0);
                    have = 0;
                }
                if (have < file.size()) {
                    fetch(url, channel, have, file, progress);
                }
                verify(part, file, url);
                // Renamed while the lock is held: another process cannot have started writing this part meanwhile.
                Files.move(part, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            throw new SaeSourceException("cannot write " + part + ": " + e.getMessage(), e);
        }
    }

    private void fetch(URI url, FileChannel channel, long have, HubFile file, Progress progress) throws SaeSourceException, IOException {
        Optional<String> range = have > 0 ? Optional.of("bytes=" + have + "-") : Optional.empty();
        HttpResponse<InputStream> r = send(url, range, "'" + file.path() + "'");
        long start = 0;
        if (r.statusCode() == 206) {
            String cr = r.headers().firstValue("Content-Range").orElse("");
            Matcher m = CONTENT_RANGE.matcher(cr);
            if (!m.matches() || Long.parseLong(m.group(1)) != have) {
                r.body().close();
                throw new SaeSourceException(url + " answered a request for bytes from " + have + " with Content-Range '" + cr + "'");
            }
            start = have;
        }
        channel.truncate(start);
        channel.position(start);
        long done = start;
        long lastReport = System.nanoTime();
        try (InputStream in = r.body()) {
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) {
                ByteBuffer chunk = ByteBuffer.wrap(buf, 0, n);
                while (chunk.hasRemaining()) {
                    channel.write(chunk);
                }
                done += n;
                if (done > file.size()) {
                    break;
                }
                long now = System.nanoTime();
                if (now - lastReport > 1_000_000_000L) {
                    progress.update(file.path(), done, file.size());
                    lastReport = now;
                }
            }
        } catch (IOException e) {
            throw new SaeSourceException("the download of " + url + " broke off at byte " + done + " of " + file.size() + " ("
                    + e.getMessage() + "); run it again to resume from there", e);
        }
        progress.update(file.path(), done, file.size());
    }

    private static void verify(Path part, HubFile file, URI url) throws SaeSourceException, IOException {
        long size = Files.size(part);
        if (size != file.size()) {
            Files.deleteIfExists(part);
            throw new SaeSourceException(url + ": received " + size + " bytes, the hub lists " + file.size()
                    + "; the partial file was deleted, run it again");
        }
        MessageDigest digest;
        String expected;
        if (file.lfsSha256().isPresent()) {
            digest = digest("SHA-256");
            expected = file.lfsSha256().get();
        } else {
            digest = digest("SHA-1");
            digest.update(("blob " + size + "\0").getBytes(StandardCharsets.US_ASCII));
            expected = file.blobId();
        }
        try (InputStream in = Files.newInputStream(part)) {
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) {
                digest.update(buf, 0, n);
            }
        }
        String actual = HexFormat.of().formatHex(digest.digest());
        if (!actual.equalsIgnoreCase(expected)) {
            Files.deleteIfExists(part);
            throw new SaeSourceException(url + ": the " + (file.lfsSha256().isPresent() ? "SHA-256" : "git blob id") + " of the "
                    + "downloaded bytes is " + actual + ", the hub lists " + expected + "; the file was deleted (a proxy or mirror "
                    + "serving other bytes, or a file changed under the same commit): run it again, or check HF_ENDPOINT");
        }
    }

    /** GETs {@code uri}, following redirects itself so the token stays with the endpoint's host; fails on anything but 2xx. */
    private HttpResponse<InputStream> send(URI uri, Optional<String> range, String what) throws SaeSourceException {
        if (settings.offline()) {
            throw new SaeSourceException("offline (HF_HUB_OFFLINE is set) and " + what + " is not in the cache " + settings.hubCache()
                    + "; it needs " + uri + ": unset HF_HUB_OFFLINE on a machine that reaches the hub, or copy a cache that has it");
        }
        URI current = uri;
        for (int hop = 0; hop <= MAX_REDIRECTS; hop++) {
            HttpRequest.Builder b = HttpRequest.newBuilder(current).GET().timeout(Duration.ofMinutes(2))
                    .header("User-Agent", "saeguard");
            if (sameOrigin(current, settings.endpoint()) && settings.token().isPresent()) {
                b.header("Authorization", "Bearer " + settings.token().get());
            }
            range.ifPresent(rg -> b.header("Range", rg));
            HttpResponse<InputStream> r;
            try {
                r = http.send(b.build(), HttpResponse.BodyHandlers.ofInputStream());
            } catch (IOException e) {
                throw new SaeSourceException("cannot reach " + current + " (" + e.getClass().getSimpleName()
                        + (e.getMessage() != null ? ": " + e.getMessage() : "") + ") for " + what + ": check the network and HF_ENDPOINT ("
                        + settings.endpoint() + "); HF_HUB_OFFLINE=1 uses only the cache", e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new SaeSourceException("interrupted while fetching " + current, e);
            }
            int status = r.statusCode();
            if (status >= 300 && status < 400 && r.headers().firstValue("Location").isPresent()) {
                close(r);
                current = current.resolve(r.headers().firstValue("Location").get());
                continue;
            }
            if (status >= 200 && status < 300) {
                return r;
            }
            close(r);
            throw new SaeSourceException(current + " answered " + status + r.headers().firstValue("X-Error-Message").map(m -> " (" + m + ")")
                    .orElse("") + " for " + what + ": " + advice(status));
        }
        throw new SaeSourceException(uri + ": more than " + MAX_REDIRECTS + " redirects");
    }

    private String advice(int status) {
        return switch (status) {
            case 401, 403 -> settings.token().isPresent()
                    ? "the hub refused the token (HF_TOKEN or the token file): check it has read access and that its account accepted "
                            + "the repository's terms on the Hub"
                    : "the repository is gated or private: accept its terms on the Hub and set HF_TOKEN";
            case 404 -> "no such repository, revision or file (check the release table's repo and the --revision)";
            case 416 -> "the server refused the byte range; delete the .part file and run it again";
            case 429 -> "rate limited: wait and run it again (a token raises the limit)";
            default -> "run it again later; if it persists, check HF_ENDPOINT (" + settings.endpoint() + ")";
        };
    }

    private static boolean sameOrigin(URI a, URI b) {
        return a.getScheme().equalsIgnoreCase(b.getScheme()) && a.getHost().equalsIgnoreCase(b.getHost()) && port(a) == port(b);
    }

    private static int port(URI u) {
        return u.getPort() >= 0 ? u.getPort() : "https".equalsIgnoreCase(u.getScheme()) ? 443 : 80;
    }

    private static JsonNode readJson(HttpResponse<InputStream> r, URI uri) throws SaeSourceException {
        try (InputStream in = r.body()) {
            return JSON.readTree(in);
        } catch (IOException e) {
            throw new SaeSourceException(uri + " answered with something other than JSON: " + e.getMessage(), e);
        }
    }

    private static Optional<String> next(String link) {
        Matcher m = NEXT_LINK.matcher(link);
        return m.find() ? Optional.of(m.group(1)) : Optional.empty();
    }

    private static void close(HttpResponse<InputStream> r) {
        try {
            r.body().close();
        } catch (IOException e) {
            // the body of a redirect or an error is not read; closing it only frees the connection
        }
    }

    /** Percent-encodes UTF-8 bytes outside RFC 3986's unreserved set (and {@code /} unless kept), as Python's {@code quote}. */
    static String encode(String s, boolean keepSlash) {
        StringBuilder out = new StringBuilder();
        for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
            char c = (char) (b & 0xff);
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~'
                    || (keepSlash && c == '/')) {
                out.append(c);
            } else {
                out.append('%').append(String.format("%02X", b & 0xff));
            }
        }
        return out.toString();
    }

    private static MessageDigest digest(String algorithm) {
        try {
            return MessageDigest.getInstance(algorithm);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
