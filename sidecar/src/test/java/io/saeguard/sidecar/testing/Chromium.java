package io.saeguard.sidecar.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.WebSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Debian's headless Chromium driven over the Chrome DevTools Protocol with the JDK's own HTTP and
 * WebSocket clients: navigate, evaluate JavaScript, take a screenshot. No WebDriver, nothing
 * downloaded. Flags keep Chromium off the (closed) network.
 */
public final class Chromium implements AutoCloseable {
    public static final Path BINARY = Path.of("/usr/bin/chromium");
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern LISTENING = Pattern.compile("DevTools listening on (ws://[^\\s]+)");

    private final Process process;
    private final Path profile;
    private final WebSocket socket;
    private final AtomicInteger ids = new AtomicInteger();
    private final Map<Integer, CompletableFuture<JsonNode>> pending = new ConcurrentHashMap<>();
    private final Map<String, java.util.function.Consumer<JsonNode>> events = new ConcurrentHashMap<>();
    private final Object sending = new Object();

    public static boolean installed() {
        return Files.isExecutable(BINARY);
    }

    private Chromium(Process process, Path profile, WebSocket socket) {
        this.process = process;
        this.profile = profile;
        this.socket = socket;
    }

    /** Starts a headless Chromium with a fresh profile and attaches to its first page. */
    public static Chromium start(int width, int height) throws Exception {
        Path profile = Files.createTempDirectory("saeguard-chromium");
        Process p = new ProcessBuilder(List.of(BINARY.toString(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--remote-allow-origins=*", "--remote-debugging-port=0",
                "--window-size=" + width + "," + height, "--user-data-dir=" + profile, "about:blank")).redirectErrorStream(true).start();
        String browserWs = null;
        BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        StringBuilder log = new StringBuilder();
        for (String line; browserWs == null && System.nanoTime() < deadline && (line = out.readLine()) != null; ) {
            log.append(line).append('\n');
            Matcher m = LISTENING.matcher(line);
            if (m.find()) {
                browserWs = m.group(1);
            }
        }
        if (browserWs == null) {
            p.destroyForcibly();
            throw new IllegalStateException("Chromium did not report its DevTools endpoint:\n" + log);
        }
        Thread drain = new Thread(() -> {
            try {
                while (out.readLine() != null) {
                    // Chromium's own chatter; not needed
                }
            } catch (IOException e) {
                // process ended
            }
        }, "chromium-output");
        drain.setDaemon(true);
        drain.start();
        URI browser = URI.create(browserWs);
        HttpClient http = HttpClient.newHttpClient();
        String pageWs = null;
        for (int i = 0; i < 50 && pageWs == null; i++) {
            JsonNode targets = JSON.readTree(http.send(HttpRequest.newBuilder(URI.create("http://" + browser.getAuthority() + "/json/list"))
                    .build(), HttpResponse.BodyHandlers.ofString()).body());
            for (JsonNode t : targets) {
                if ("page".equals(t.path("type").asText())) {
                    pageWs = t.path("webSocketDebuggerUrl").asText();
                    break;
                }
            }
            if (pageWs == null) {
                Thread.sleep(100);
            }
        }
        if (pageWs == null) {
            p.destroyForcibly();
            throw new IllegalStateException("Chromium has no page target");
        }
        Chromium[] self = new Chromium[1];
        WebSocket ws = http.newWebSocketBuilder().connectTimeout(Duration.ofSeconds(10)).buildAsync(URI.create(pageWs), new WebSocket.Listener() {
            private final StringBuilder partial = new StringBuilder();

            @Override
            public CompletionStage<?> onText(WebSocket webSocket, CharSequence data, boolean last) {
                partial.append(data);
                if (last) {
                    String message = partial.toString();
                    partial.setLength(0);
                    self[0].dispatch(message);
                }
                webSocket.request(1);
                return null;
            }
        }).get(20, TimeUnit.SECONDS);
        self[0] = new Chromium(p, profile, ws);
        return self[0];
    }

    private void dispatch(String message) {
        try {
            JsonNode n = JSON.readTree(message);
            if (n.has("method") && !n.has("id")) {
                java.util.function.Consumer<JsonNode> handler = events.get(n.get("method").asText());
                if (handler != null) {
                    handler.accept(n.path("params"));
                }
            } else if (n.has("id")) {
                CompletableFuture<JsonNode> f = pending.remove(n.get("id").asInt());
                if (f != null) {
                    if (n.has("error")) {
                        f.completeExceptionally(new IllegalStateException("CDP error: " + n.get("error")));
                    } else {
                        f.complete(n.path("result"));
                    }
                }
            }
        } catch (IOException e) {
            // not JSON: ignore
        }
    }

    /** Sends one CDP command and waits for its result. */
    public JsonNode call(String method, Map<String, Object> params) throws Exception {
        int id = ids.incrementAndGet();
        CompletableFuture<JsonNode> f = new CompletableFuture<>();
        pending.put(id, f);
        ObjectNode msg = JSON.createObjectNode().put("id", id).put("method", method);
        msg.set("params", JSON.valueToTree(params));
        send(msg.toString());
        return f.get(30, TimeUnit.SECONDS);
    }

    /** Sends one CDP command without waiting for its result (safe from an event handler, which runs on the socket's thread). */
    private void fireAndForget(String method, Map<String, Object> params) {
        ObjectNode msg = JSON.createObjectNode().put("id", ids.incrementAndGet()).put("method", method);
        msg.set("params", JSON.valueToTree(params));
        try {
            send(msg.toString());
        } catch (Exception e) {
            throw new IllegalStateException("CDP send failed: " + method, e);
        }
    }

    /** The JDK WebSocket allows one outstanding send: the test thread and event handlers take turns. */
    private void send(String text) throws Exception {
        synchronized (sending) {
            socket.sendText(text, true).get(10, TimeUnit.SECONDS);
        }
    }

    /**
     * Answers every HTTP authentication challenge with {@code user}/{@code password}, as a person typing them into the
     * browser's login prompt would (CDP {@code Fetch.authRequired}); the browser then sends them on its own with the
     * page's later requests, its event stream included. Call before {@link #navigate}.
     */
    public void login(String user, String password) throws Exception {
        events.put("Fetch.requestPaused", p -> fireAndForget("Fetch.continueRequest", Map.of("requestId", p.path("requestId").asText())));
        events.put("Fetch.authRequired", p -> fireAndForget("Fetch.continueWithAuth", Map.of("requestId", p.path("requestId").asText(),
                "authChallengeResponse", Map.of("response", "ProvideCredentials", "username", user, "password", password))));
        call("Fetch.enable", Map.of("handleAuthRequests", true, "patterns", List.of(Map.of("urlPattern", "*"))));
    }

    /**
     * Presses one key as a keyboard would (key down, then up): {@code "Tab"}, {@code "Enter"}, {@code " "} (Space),
     * {@code "Escape"}; with {@code shift} for Shift+Tab.
     */
    public void press(String key, boolean shift) throws Exception {
        record Key(String code, int keyCode, String text) {
        }
        Key k = switch (key) {
            case "Tab" -> new Key("Tab", 9, "");
            case "Enter" -> new Key("Enter", 13, "\r");
            case " " -> new Key("Space", 32, " ");
            case "Escape" -> new Key("Escape", 27, "");
            default -> throw new IllegalArgumentException("no key mapping for '" + key + "'");
        };
        Map<String, Object> down = new java.util.HashMap<>(Map.of("type", k.text().isEmpty() ? "rawKeyDown" : "keyDown", "key", key,
                "code", k.code(), "windowsVirtualKeyCode", k.keyCode(), "nativeVirtualKeyCode", k.keyCode(), "modifiers", shift ? 8 : 0));
        if (!k.text().isEmpty()) {
            down.put("text", k.text());
            down.put("unmodifiedText", k.text());
        }
        call("Input.dispatchKeyEvent", down);
        call("Input.dispatchKeyEvent", Map.of("type", "keyUp", "key", key, "code", k.code(), "windowsVirtualKeyCode", k.keyCode(),
                "nativeVirtualKeyCode", k.keyCode(), "modifiers", shift ? 8 : 0));
    }

    /** Types {@code text} into the focused element, as a keyboard's input would (CDP {@code Input.insertText}). */
    public void type(String text) throws Exception {
        call("Input.insertText", Map.of("text", text));
    }

    public void navigate(String url) throws Exception {
        call("Page.enable", Map.of());
        call("Page.navigate", Map.of("url", url));
    }

    /** Evaluates a JavaScript expression in the page and returns its value (JSON). */
    public JsonNode eval(String expression) throws Exception {
        JsonNode r = call("Runtime.evaluate", Map.of("expression", expression, "returnByValue", true));
        if (r.has("exceptionDetails")) {
            throw new IllegalStateException("page script failed: " + r.get("exceptionDetails"));
        }
        return r.path("result").path("value");
    }

    /** Writes a PNG screenshot of the viewport to {@code file}; returns its bytes. */
    public byte[] screenshot(Path file) throws Exception {
        byte[] png = Base64.getDecoder().decode(call("Page.captureScreenshot", Map.of("format", "png")).path("data").asText());
        Files.createDirectories(file.toAbsolutePath().getParent());
        Files.write(file, png);
        return png;
    }

    @Override
    public void close() {
        try {
            socket.sendClose(WebSocket.NORMAL_CLOSURE, "done");
        } catch (RuntimeException e) {
            // closing anyway
        }
        process.destroy();
        try {
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly();
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
        try (var files = Files.walk(profile)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        } catch (IOException e) {
            // a temp dir left behind
        }
    }
}
