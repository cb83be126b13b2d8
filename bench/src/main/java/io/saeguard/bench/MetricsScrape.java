package io.saeguard.bench;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A few of the sidecar's Prometheus series (text format, every label set summed), read at the start
 * and end of a measurement window so the window can report the pipeline's own view: mean micro-batch
 * size, time spent in encode, tokens encoded.
 *
 * @param values series name (e.g. {@code saeguard_encode_seconds_sum}) to the sum over its label sets
 */
record MetricsScrape(Map<String, Double> values) {
    static final String[] SERIES = {"saeguard_encode_seconds_sum", "saeguard_encode_seconds_count", "saeguard_batch_tokens_sum",
        "saeguard_batch_tokens_count", "saeguard_tokens_encoded_total", "saeguard_decision_latency_seconds_sum",
        "saeguard_decision_latency_seconds_count", "saeguard_truncated_tokens_total", "saeguard_deadletters_total"};

    /** The sidecar's decision latency by stage (ingest, engine, egress), kept per label set. */
    static final String STAGE = "saeguard_stage_latency_seconds";
    static final String[] STAGES = {"ingest", "engine", "egress"};

    /** The engine thread's time by part of the batch work, kept per label set. */
    static final String ENGINE_BUSY = "saeguard_engine_busy_seconds_total";
    static final String[] ENGINE_PARTS = {"assemble", "encode", "features", "detect", "publish", "fvu", "prompt_model"};

    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

    /** Scrapes {@code url}; an empty scrape if it cannot be read (the window then has no pipeline metrics). */
    static MetricsScrape of(String url) {
        Map<String, Double> v = new LinkedHashMap<>();
        try {
            HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(5))
                    .header("Accept", "text/plain; version=0.0.4").GET().build(), HttpResponse.BodyHandlers.ofString());
            for (String line : r.body().split("\n")) {
                if (line.isEmpty() || line.charAt(0) == '#') {
                    continue;
                }
                int brace = line.indexOf('{');
                int space = line.lastIndexOf(' ');
                String name = line.substring(0, brace >= 0 ? brace : line.indexOf(' '));
                for (String s : SERIES) {
                    if (s.equals(name)) {
                        v.merge(name, Double.parseDouble(line.substring(space + 1)), Double::sum);
                    }
                }
                if (name.equals(ENGINE_BUSY)) {
                    v.put(line.substring(0, space), Double.parseDouble(line.substring(space + 1))); // per part
                }
                if (name.startsWith(STAGE) && (!name.endsWith("_bucket") || line.contains("le=\"0.1\"") || line.contains("le=\"0.25\""))) {
                    v.put(line.substring(0, space), Double.parseDouble(line.substring(space + 1))); // per stage (and bucket)
                }
            }
        } catch (Exception e) {
            if (e instanceof InterruptedException) {
                Thread.currentThread().interrupt();
            }
            System.err.println("loadgen: cannot scrape " + url + ": " + e);
        }
        return new MetricsScrape(v);
    }

    /** What happened in the pipeline between two scrapes of a window of {@code seconds}. */
    static Map<String, Object> window(MetricsScrape a, MetricsScrape b, double seconds) {
        Map<String, Object> out = new LinkedHashMap<>();
        if (a.values.isEmpty() || b.values.isEmpty()) {
            return out;
        }
        double encodeS = delta(a, b, "saeguard_encode_seconds_sum");
        double batches = delta(a, b, "saeguard_batch_tokens_count");
        double batchTokens = delta(a, b, "saeguard_batch_tokens_sum");
        double encoded = delta(a, b, "saeguard_tokens_encoded_total");
        out.put("batches", batches);
        out.put("mean_batch_tokens", batches > 0 ? batchTokens / batches : 0);
        out.put("tokens_encoded", encoded);
        out.put("encode_seconds", encodeS);
        out.put("encode_busy_fraction", encodeS / seconds);
        out.put("encode_tokens_per_s_while_encoding", encodeS > 0 ? encoded / encodeS : 0);
        double lat = delta(a, b, "saeguard_decision_latency_seconds_count");
        out.put("sidecar_mean_decision_latency_ms", lat > 0 ? 1000 * delta(a, b, "saeguard_decision_latency_seconds_sum") / lat : 0);
        for (String stage : STAGES) { // mean and share of decisions over 100 / 250 ms, per stage, in this window
            double n = delta(a, b, STAGE + "_count{stage=\"" + stage + "\"}");
            if (n > 0) {
                out.put("stage_" + stage + "_mean_ms", 1000 * delta(a, b, STAGE + "_sum{stage=\"" + stage + "\"}") / n);
                out.put("stage_" + stage + "_over_100ms", 1 - delta(a, b, STAGE + "_bucket{stage=\"" + stage + "\",le=\"0.1\"}") / n);
                out.put("stage_" + stage + "_over_250ms", 1 - delta(a, b, STAGE + "_bucket{stage=\"" + stage + "\",le=\"0.25\"}") / n);
            }
        }
        double busy = 0;
        for (String part : ENGINE_PARTS) { // share of the window the engine thread spent on each part of the batch work
            double s = delta(a, b, ENGINE_BUSY + "{part=\"" + part + "\"}");
            busy += s;
            out.put("engine_busy_" + part, s / seconds);
        }
        out.put("engine_busy", busy / seconds);
        out.put("truncated_tokens", delta(a, b, "saeguard_truncated_tokens_total"));
        out.put("deadletters", delta(a, b, "saeguard_deadletters_total"));
        return out;
    }

    private static double delta(MetricsScrape a, MetricsScrape b, String name) {
        return b.values.getOrDefault(name, 0.0) - a.values.getOrDefault(name, 0.0);
    }
}
