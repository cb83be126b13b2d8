package io.saeguard.sae.testing;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import io.saeguard.sae.format.SaeWriter;
import io.saeguard.sae.train.TopKWeights;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A Hugging Face Hub on 127.0.0.1 with the hub's HTTP layout, for tests of {@code SaePuller}: the revision API
 * ({@code /api/models/{repo}/revision/{rev}} → {@code {"sha"}}), the tree API
 * ({@code /api/models/{repo}/tree/{rev}/{path}?recursive=true}, two entries a page, paged with a {@code Link} header)
 * and {@code /{repo}/resolve/{rev}/{path}}: regular files served there, LFS files redirected (302) to a second
 * server, the "CDN", reached as {@code localhost} so it is another host. Both honour {@code Range: bytes=N-} (206).
 * Every request is recorded with its {@code Authorization} and {@code Range} headers. Faults: a file can be served
 * cut short once ({@link #breakOnce}) or with other bytes ({@link #corrupt}); a token can be required
 * ({@link #requireToken}).
 */
public final class FakeHub implements AutoCloseable {
    private static final int PAGE = 2;
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern RANGE = Pattern.compile("bytes=(\\d+)-");

    /** One request: which server got it, its path and query, and the two headers the tests check. */
    public record Request(String server, String path, Optional<String> authorization, Optional<String> range) {
    }

    private record Blob(byte[] bytes, boolean lfs) {
    }

    private final HttpServer hub;
    private final HttpServer cdn;
    private final String commit;
    private final Map<String, Map<String, Blob>> repos = new ConcurrentHashMap<>();
    private final Map<String, Integer> breakAt = new ConcurrentHashMap<>();
    private final Set<String> corrupted = ConcurrentHashMap.newKeySet();
    private final List<Request> requests = new CopyOnWriteArrayList<>();
    private volatile Optional<String> requiredToken = Optional.empty();

    public FakeHub() throws IOException {
        this.commit = "0123456789abcdef0123456789abcdef01234567";
        this.hub = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        this.cdn = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        hub.createContext("/", this::hub);
        cdn.createContext("/", this::cdn);
        hub.start();
        cdn.start();
    }

    /** The endpoint to give as {@code HF_ENDPOINT}. */
    public URI endpoint() {
        return URI.create("http://127.0.0.1:" + hub.getAddress().getPort());
    }

    /** The commit every repository's {@code main} resolves to. */
    public String commit() {
        return commit;
    }

    /** Adds a file to {@code repo}; an {@code lfs} file is listed with its SHA-256 and served through the CDN. */
    public FakeHub file(String repo, String path, byte[] bytes, boolean lfs) {
        repos.computeIfAbsent(repo, r -> new ConcurrentHashMap<>()).put(path, new Blob(bytes.clone(), lfs));
        return this;
    }

    /**
     * Writes a tiny TopK SAE (d_in 8, d_sae 32, k 4, fixed seed) in SAELens format under {@code scratch} and serves its
     * {@code cfg.json} (a regular file) and its weights and sparsity (LFS files) under {@code path} of {@code repo};
     * {@code normalize} replaces the config's {@code normalize_activations}.
     */
    public FakeHub saeLensSae(String repo, String path, Path scratch, Optional<String> normalize) throws IOException {
        Random random = new Random(7);
        int dIn = 8;
        int dSae = 32;
        float[] wEnc = new float[dIn * dSae];
        float[] wDec = new float[dIn * dSae];
        for (int i = 0; i < wEnc.length; i++) {
            wEnc[i] = (float) random.nextGaussian();
            wDec[i] = (float) random.nextGaussian();
        }
        float[] density = new float[dSae];
        Arrays.fill(density, -2f);
        SaeWriter.writeTopK(scratch, new TopKWeights(dIn, dSae, 4, wEnc, new float[dSae], wDec, new float[dIn]), Optional.of(density),
                Optional.of("gpt2-small"), Optional.of(path));
        if (normalize.isPresent()) {
            ObjectNode cfg = (ObjectNode) JSON.readTree(scratch.resolve("cfg.json").toFile());
            cfg.put("normalize_activations", normalize.get());
            JSON.writeValue(scratch.resolve("cfg.json").toFile(), cfg);
        }
        file(repo, path + "/cfg.json", Files.readAllBytes(scratch.resolve("cfg.json")), false);
        file(repo, path + "/sae_weights.safetensors", Files.readAllBytes(scratch.resolve("sae_weights.safetensors")), true);
        return file(repo, path + "/sparsity.safetensors", Files.readAllBytes(scratch.resolve("sparsity.safetensors")), true);
    }

    /** The next download of {@code path} sends its full length as Content-Length but stops after {@code bytes} bytes. */
    public void breakOnce(String path, int bytes) {
        breakAt.put(path, bytes);
    }

    /** Downloads of {@code path} serve other bytes of the same length (the listing keeps the true hash). */
    public void corrupt(String path) {
        corrupted.add(path);
    }

    /** The hub answers 401 to requests without {@code Authorization: Bearer token}. */
    public void requireToken(String token) {
        requiredToken = Optional.of(token);
    }

    public List<Request> requests() {
        return List.copyOf(requests);
    }

    public void clearRequests() {
        requests.clear();
    }

    private void hub(HttpExchange x) throws IOException {
        record(x, "hub");
        String path = x.getRequestURI().getRawPath();
        if (requiredToken.isPresent() && !("Bearer " + requiredToken.get()).equals(x.getRequestHeaders().getFirst("Authorization"))) {
            x.getResponseHeaders().add("X-Error-Message", "Access to this repository is restricted");
            send(x, 401, new byte[0]);
            return;
        }
        Matcher revision = Pattern.compile("/api/models/([^/]+/[^/]+)/revision/([^/]+)").matcher(path);
        Matcher tree = Pattern.compile("/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?").matcher(path);
        Matcher resolve = Pattern.compile("/([^/]+/[^/]+)/resolve/([^/]+)/(.+)").matcher(path);
        if (revision.matches() && repos.containsKey(revision.group(1))) {
            json(x, "{\"id\":\"" + revision.group(1) + "\",\"sha\":\"" + commit + "\"}");
        } else if (tree.matches() && repos.containsKey(tree.group(1)) && knownRevision(tree.group(2))) {
            tree(x, tree.group(1), tree.group(3) == null ? "" : decode(tree.group(3)));
        } else if (resolve.matches() && repos.containsKey(resolve.group(1)) && knownRevision(resolve.group(2))
                && repos.get(resolve.group(1)).containsKey(decode(resolve.group(3)))) {
            String repo = resolve.group(1);
            String file = decode(resolve.group(3));
            Blob b = repos.get(repo).get(file);
            if (b.lfs()) {
                x.getResponseHeaders().add("Location", "http://localhost:" + cdn.getAddress().getPort() + "/blobs/" + repo + "/" + file
                        + "?signature=abc");
                x.getResponseHeaders().add("X-Linked-Size", Integer.toString(b.bytes().length));
                x.getResponseHeaders().add("X-Repo-Commit", commit);
                send(x, 302, new byte[0]);
            } else {
                x.getResponseHeaders().add("X-Repo-Commit", commit);
                bytes(x, file, b.bytes());
            }
        } else {
            x.getResponseHeaders().add("X-Error-Message", "Entry not found");
            send(x, 404, new byte[0]);
        }
    }

    private void cdn(HttpExchange x) throws IOException {
        record(x, "cdn");
        Matcher m = Pattern.compile("/blobs/([^/]+/[^/]+)/(.+)").matcher(x.getRequestURI().getRawPath());
        if (m.matches() && repos.containsKey(m.group(1)) && repos.get(m.group(1)).containsKey(decode(m.group(2)))) {
            String file = decode(m.group(2));
            bytes(x, file, repos.get(m.group(1)).get(file).bytes());
        } else {
            send(x, 404, new byte[0]);
        }
    }

    private boolean knownRevision(String rev) {
        return rev.equals("main") || rev.equals(commit);
    }

    private void tree(HttpExchange x, String repo, String folder) throws IOException {
        List<String> entries = new ArrayList<>();
        for (Map.Entry<String, Blob> e : repos.get(repo).entrySet().stream().sorted(Map.Entry.comparingByKey()).toList()) {
            if (!folder.isEmpty() && !e.getKey().startsWith(folder + "/")) {
                continue;
            }
            byte[] b = e.getValue().bytes();
            String entry = "{\"type\":\"file\",\"path\":\"" + e.getKey() + "\",\"size\":" + b.length + ",\"oid\":\"" + gitBlobId(b) + "\"";
            if (e.getValue().lfs()) {
                entry += ",\"lfs\":{\"oid\":\"" + hex("SHA-256", b) + "\",\"size\":" + b.length + ",\"pointerSize\":134}";
            }
            entries.add(entry + "}");
        }
        if (entries.isEmpty()) {
            send(x, 404, new byte[0]);
            return;
        }
        String query = Optional.ofNullable(x.getRequestURI().getRawQuery()).orElse("");
        Matcher c = Pattern.compile("cursor=(\\d+)").matcher(query);
        int from = c.find() ? Integer.parseInt(c.group(1)) : 0;
        int to = Math.min(entries.size(), from + PAGE);
        if (to < entries.size()) {
            x.getResponseHeaders().add("Link", "<" + x.getRequestURI().getRawPath() + "?recursive=true&cursor=" + to + ">; rel=\"next\"");
        }
        json(x, "[" + String.join(",", entries.subList(from, to)) + "]");
    }

    private void bytes(HttpExchange x, String file, byte[] all) throws IOException {
        byte[] body = all;
        if (corrupted.contains(file)) {
            body = all.clone();
            body[body.length / 2] ^= 0x5a;
        }
        int start = 0;
        String range = x.getRequestHeaders().getFirst("Range");
        if (range != null) {
            Matcher m = RANGE.matcher(range);
            if (m.matches()) {
                start = Integer.parseInt(m.group(1));
            }
        }
        Integer cut = breakAt.remove(file);
        x.getResponseHeaders().add("Accept-Ranges", "bytes");
        if (start > 0) {
            x.getResponseHeaders().add("Content-Range", "bytes " + start + "-" + (body.length - 1) + "/" + body.length);
        }
        x.sendResponseHeaders(start > 0 ? 206 : 200, body.length - start);
        OutputStream out = x.getResponseBody();
        if (cut != null) {
            out.write(body, start, Math.min(cut, body.length - start));
            out.flush();
            // A handler that throws makes the server close the connection: the client reads an early end of stream.
            throw new IOException("breakOnce: connection cut after " + cut + " bytes on purpose");
        }
        try (out) {
            out.write(body, start, body.length - start);
        }
    }

    private void record(HttpExchange x, String server) {
        requests.add(new Request(server, x.getRequestURI().toString(), Optional.ofNullable(x.getRequestHeaders().getFirst("Authorization")),
                Optional.ofNullable(x.getRequestHeaders().getFirst("Range"))));
    }

    private static void json(HttpExchange x, String body) throws IOException {
        x.getResponseHeaders().add("Content-Type", "application/json");
        send(x, 200, body.getBytes(StandardCharsets.UTF_8));
    }

    private static void send(HttpExchange x, int status, byte[] body) throws IOException {
        x.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
        try (OutputStream out = x.getResponseBody()) {
            out.write(body);
        }
    }

    private static String decode(String s) {
        return URLDecoder.decode(s.replace("+", "%2B"), StandardCharsets.UTF_8);
    }

    /** The hub's {@code oid} of a file: SHA-1 of {@code "blob <size>\0"} and the bytes (git's blob id). */
    public static String gitBlobId(byte[] b) {
        try {
            MessageDigest d = MessageDigest.getInstance("SHA-1");
            d.update(("blob " + b.length + "\0").getBytes(StandardCharsets.US_ASCII));
            return HexFormat.of().formatHex(d.digest(b));
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    private static String hex(String algorithm, byte[] b) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance(algorithm).digest(b));
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public void close() {
        hub.stop(0);
        cdn.stop(0);
    }
}
