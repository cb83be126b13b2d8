package io.saeguard.sidecar.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import io.saeguard.sae.PythonSaeFixtures;
import io.saeguard.sae.TestSeed;
import io.saeguard.sidecar.app.Sidecar;
import io.saeguard.sidecar.testing.KafkaBroker;
import io.saeguard.sidecar.testing.KafkaBrokerExtension;
import io.saeguard.sidecar.testing.RawHttp;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.LogEvent;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.appender.AbstractAppender;
import org.apache.logging.log4j.core.config.Property;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * 10,000 fuzzed requests (bad JSON, huge bodies, wrong content types, odd ids, paths and methods, missing and wrong
 * tokens) against a sidecar with tokens. Invariant: every request gets an HTTP answer (no reset, even for a body over
 * the limit, which is a 413), no answer is a 5xx, nothing is logged at ERROR, the sidecar stays ready and its heap
 * after the run is within 256 MiB of its heap before.
 */
@ExtendWith(KafkaBrokerExtension.class)
class HttpFuzzIT {
    private static final long SEED = TestSeed.draw("HttpFuzzIT");
    private static final int REQUESTS = 10_000;

    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        PythonSaeFixtures.assumeAvailable();
    }

    /** Collects ERROR events of every logger while installed. */
    private static final class Errors extends AbstractAppender {
        final List<String> seen = Collections.synchronizedList(new ArrayList<>());

        Errors() {
            super("fuzz-errors", null, null, true, Property.EMPTY_ARRAY);
        }

        @Override
        public void append(LogEvent event) {
            if (event.getLevel().isMoreSpecificThan(Level.ERROR)) {
                seen.add(event.getLoggerName() + ": " + event.getMessage().getFormattedMessage());
            }
        }
    }

    @Test
    void tenThousandFuzzedRequestsGetA4xxOrAnAnswerNeverA5xxOrAReset(KafkaBroker kafka) throws Exception {
        Scenario s = HttpAuthIT.withTokens(dir, kafka.bootstrap(), SEED, "");
        Random random = new Random(SEED);
        Errors errors = new Errors();
        errors.start();
        LoggerContext logs = (LoggerContext) LogManager.getContext(false);
        logs.getConfiguration().getRootLogger().addAppender(errors, Level.ERROR, null);
        logs.updateLoggers();
        try (Sidecar sidecar = Sidecar.start(s.config())) {
            int port = sidecar.httpPort();
            long heapBefore = heapAfterGc();
            Map<Integer, AtomicInteger> statuses = new ConcurrentHashMap<>();
            Map<String, AtomicInteger> failures = new ConcurrentHashMap<>();
            List<String> examples = Collections.synchronizedList(new ArrayList<>());
            ExecutorService pool = Executors.newFixedThreadPool(4);
            List<Future<?>> done = new ArrayList<>();
            for (int i = 0; i < REQUESTS; i++) {
                long requestSeed = random.nextLong();
                int n = i;
                done.add(pool.submit(() -> {
                    Fuzzed f = fuzz(new Random(requestSeed), n, s);
                    try {
                        RawHttp.Answer a = RawHttp.send(port, f.method(), f.path(), f.headers(), f.body());
                        statuses.computeIfAbsent(a.status(), k -> new AtomicInteger()).incrementAndGet();
                        if (a.status() >= 500 || (f.oversize() && a.status() != 413)) {
                            examples.add(f + " -> " + a.text().substring(0, Math.min(300, a.text().length())));
                        }
                    } catch (IOException e) {
                        failures.computeIfAbsent(e.toString(), k -> new AtomicInteger()).incrementAndGet();
                        examples.add(f + " -> " + e);
                    }
                }));
            }
            for (Future<?> f : done) {
                f.get();
            }
            pool.shutdown();
            long heapAfter = heapAfterGc();
            System.out.printf("HttpFuzzIT: %d requests, statuses %s, connection failures %s, heap %d -> %d MiB%n", REQUESTS,
                    new TreeMap<>(statuses), failures, heapBefore >> 20, heapAfter >> 20);

            assertThat(examples).as("5xx, resets, or an oversize body not answered 413").isEmpty();
            assertThat(statuses.keySet()).allMatch(code -> code < 500);
            assertThat(statuses.getOrDefault(413, new AtomicInteger()).get()).as("oversize bodies answered 413").isPositive();
            assertThat(errors.seen).as("nothing logged at ERROR").isEmpty();
            assertThat(heapAfter - heapBefore).as("heap growth").isLessThan(256L << 20);
            assertThat(RawHttp.send(port, "GET", "/health/live", Map.of(), new byte[0]).status()).isEqualTo(200);
        } finally {
            logs.getConfiguration().getRootLogger().removeAppender("fuzz-errors");
            logs.updateLoggers();
        }
    }

    private record Fuzzed(String method, String path, Map<String, String> headers, byte[] body, boolean oversize) {
        @Override
        public String toString() {
            return method + " " + (path.length() > 80 ? path.substring(0, 80) + "..." : path) + " " + headers.keySet() + " body "
                    + body.length + " bytes";
        }
    }

    private static long heapAfterGc() {
        System.gc();
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    }

    private static final String[] PATHS = {"/v1/check", "/v1/encode", "/v1/detectors", "/v1/detectors/planted", "/v1/features/top", "/",
        "/metrics", "/health/live", "/health/ready", "/v1/alerts", "/v1/", "/v2/check"};
    private static final String[] IDS = {"", "..", "%2e%2e", "a%2Fb", "%ZZ", "%00", "planted?x=1", "ü", "%F0%9F%92%A3", "a b",
        "x".repeat(5000), "planted/extra", "-", ";", "%25", "new-one"};
    private static final String[] TYPES = {"application/json", "application/octet-stream", "text/plain", "application/yaml",
        "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "application/json; charset=utf-16", ""};
    private static final String[] METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"};
    private static final String[] JSONS = {"{", "[]", "null", "{\"activations\": 7}", "{\"activations\": [[1, 2]]}", "{\"activations\": [[]]}",
        "{\"sae\": \"test-sae\", \"activations\": [[1e309]]}", "{\"text\": \"hi\"}", "{\"text\": \"\"}", "{\"request_id\": 5}",
        "{\"sae\": \"nope\", \"activations\": [[1]]}", "{\"position\": \"x\", \"activations\": [[\"a\"]]}", "\"string\"", "1",
        "{\"activations\": " + "[".repeat(2000) + "]".repeat(2000) + "}", "{\"a\":1,\"a\":2}"};

    private static Fuzzed fuzz(Random r, int n, Scenario s) {
        Map<String, String> headers = new LinkedHashMap<>();
        int auth = r.nextInt(10);
        if (auth < 6) {
            headers.put("Authorization", "Bearer " + (r.nextBoolean() ? HttpAuthIT.READER : HttpAuthIT.ADMIN));
        } else if (auth == 6) {
            headers.put("Authorization", "Bearer " + HttpAuthIT.READER.substring(1));
        } else if (auth == 7) {
            headers.put("Authorization", r.nextBoolean() ? "Basic %%%" : "Bearer");
        }
        String type = TYPES[r.nextInt(TYPES.length)];
        if (!type.isEmpty()) {
            headers.put("Content-Type", type);
        }
        String method = METHODS[r.nextInt(METHODS.length)];
        String path = PATHS[r.nextInt(PATHS.length)];
        byte[] body = new byte[0];
        boolean oversize = false;
        int kind = n % 10;
        if (n % 500 == 7) {
            // a body over the endpoint's limit, sent in full: answered 413 (not a reset) whoever sends it
            headers.put("Authorization", "Bearer " + HttpAuthIT.READER);
            method = "POST";
            path = "/v1/check";
            headers.put("Content-Type", "application/octet-stream");
            body = new byte[(int) (io.saeguard.sidecar.http.HttpApi.MAX_CHECK_BYTES + 1 + r.nextInt(1 << 20))];
            oversize = true;
        } else if (n % 500 == 8) {
            headers.put("Authorization", "Bearer " + HttpAuthIT.ADMIN);
            method = "PUT";
            path = "/v1/detectors/planted";
            body = new byte[9_600_000];
            java.util.Arrays.fill(body, (byte) 'a');
            oversize = true;
        } else if (kind < 3) {
            method = "POST";
            path = r.nextBoolean() ? "/v1/check" : "/v1/encode";
            body = JSONS[r.nextInt(JSONS.length)].getBytes(StandardCharsets.UTF_8);
        } else if (kind < 5) {
            method = "POST";
            path = r.nextBoolean() ? "/v1/check" : "/v1/encode";
            body = new byte[r.nextInt(4096)];
            r.nextBytes(body);
            if (r.nextInt(4) == 0) {
                byte[] record = s.record("fuzz-" + n, r.nextInt(40), r.nextInt(100), r.nextBoolean());
                body = java.util.Arrays.copyOf(record, r.nextInt(record.length + 1));
            }
        } else if (kind < 7) {
            method = r.nextBoolean() ? "PUT" : r.nextBoolean() ? "GET" : "DELETE";
            path = "/v1/detectors/" + IDS[r.nextInt(IDS.length)];
            if (method.equals("PUT")) {
                body = ("id: " + IDS[r.nextInt(IDS.length)] + "\nsae: " + (r.nextBoolean() ? "test-sae" : "x") + "\nrule: {kind: features}\n"
                        + (r.nextBoolean() ? ":::\n" : "")).getBytes(StandardCharsets.UTF_8);
            }
        } else if (kind == 7) {
            path = path + (r.nextBoolean() ? "?n=" + r.nextInt() : "/../" + IDS[r.nextInt(IDS.length)]);
            path = r.nextInt(5) == 0 ? "//" + path : path;
        } else if (kind == 8 && r.nextBoolean()) {
            headers.put("Content-Length", Integer.toString(r.nextInt(100)));
            body = new byte[r.nextInt(100)];
            if (body.length < Integer.parseInt(headers.get("Content-Length"))) {
                headers.put("Content-Length", Integer.toString(body.length)); // a short body would only make the server wait
            }
        }
        return new Fuzzed(method, path, headers, body, oversize);
    }
}
