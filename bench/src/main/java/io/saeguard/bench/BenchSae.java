package io.saeguard.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * Writes the pipeline benchmark's SAE and detector once: the {@link SyntheticJumpRelu} weights that
 * {@link EncodeBenchmark} encodes with (same seed), as a SAELens directory ({@link SaeLensWriter}:
 * {@code cfg.json} + F32 {@code sae_weights.safetensors}), which the sidecar and both Python baselines
 * load; and a {@code features} detector on one feature with a threshold that a chosen fraction of
 * the load generator's tokens exceed (so decisions are a mix of {@code allow} and {@code flag}).
 *
 * <p>The feature and threshold are found from the load generator's own token pool
 * ({@link ActivationStream}: {@link SyntheticJumpRelu#input} with the same pool size and seed): codes
 * of features 0..63 computed here in plain Java (float64 accumulation; JumpReLU
 * {@code relu(pre)·(pre > θ)}), the one that fires on the most tokens, threshold just below its
 * {@code --fire-fraction} quantile. A directory written before with the same parameters is reused.
 *
 * <pre>java -cp bench/target/benchmarks.jar io.saeguard.bench.BenchSae --dir /tmp/saeguard-bench/sae-2304x16384
 *     [--shape 2304x16384] [--sae-id bench-sae] [--pool-tokens 1024] [--pool-seed 42] [--fire-fraction 0.01]</pre>
 *
 * Prints (and writes to {@code DIR/bench-sae.json}) the parameters, the feature, the threshold and
 * the paths; the detector is {@code DIR/bench-detector.yaml}, the SAE {@code DIR/sae}.
 */
public final class BenchSae {
    private static final int CANDIDATES = 64;
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private BenchSae() {
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> a = new LinkedHashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) {
            a.put(args[i], args[i + 1]);
        }
        if (!a.containsKey("--dir")) {
            throw new IllegalArgumentException("usage: BenchSae --dir DIR [--shape 2304x16384] [--sae-id bench-sae] [--pool-tokens 1024]"
                    + " [--pool-seed 42] [--fire-fraction 0.01]");
        }
        Path dir = Path.of(a.get("--dir"));
        SaeShape shape = SaeShape.parse(a.getOrDefault("--shape", "2304x16384"));
        String saeId = a.getOrDefault("--sae-id", "bench-sae");
        int poolTokens = Integer.parseInt(a.getOrDefault("--pool-tokens", "1024"));
        long poolSeed = Long.parseLong(a.getOrDefault("--pool-seed", "42"));
        double fireFraction = Double.parseDouble(a.getOrDefault("--fire-fraction", "0.01"));

        Map<String, Object> params = new LinkedHashMap<>();
        params.put("shape", shape.toString());
        params.put("weights_seed", EncodeBenchmark.SEED);
        params.put("sae_id", saeId);
        params.put("pool_tokens", poolTokens);
        params.put("pool_seed", poolSeed);
        params.put("fire_fraction", fireFraction);
        Path summary = dir.resolve("bench-sae.json");
        if (Files.exists(summary)) {
            JsonNode old = JSON.readTree(summary.toFile());
            if (JSON.readTree(JSON.writeValueAsString(params)).equals(old.path("params"))) {
                System.out.println(Files.readString(summary));
                return;
            }
            throw new IllegalStateException(dir + " holds a bench SAE with other parameters (" + old.path("params")
                    + "); delete the directory or pick another --dir");
        }

        SyntheticJumpRelu sae = new SyntheticJumpRelu(shape, EncodeBenchmark.SEED);
        Path saeDir = dir.resolve("sae");
        Files.createDirectories(saeDir);
        long t0 = System.nanoTime();
        SaeLensWriter.write(sae, saeDir);
        double writeS = (System.nanoTime() - t0) / 1e9;

        float[][] codes = candidateCodes(sae, poolTokens, poolSeed); // [CANDIDATES][tokens]
        int best = 0;
        int bestFires = -1;
        for (int f = 0; f < CANDIDATES; f++) {
            int n = 0;
            for (float c : codes[f]) {
                if (c > 0) {
                    n++;
                }
            }
            if (n > bestFires) {
                bestFires = n;
                best = f;
            }
        }
        float[] sorted = codes[best].clone();
        Arrays.sort(sorted);
        int k = Math.max(1, (int) Math.round(fireFraction * poolTokens)); // tokens that should fire
        float kth = sorted[sorted.length - k];
        if (!(kth > 0)) {
            throw new IllegalStateException("feature " + best + " fires on only " + bestFires + " of " + poolTokens
                    + " tokens, fewer than --fire-fraction asks for");
        }
        float threshold = kth * 0.999f; // a token fires when code / threshold >= 1
        int firing = 0;
        for (float c : codes[best]) {
            if (c >= threshold) {
                firing++;
            }
        }
        Path detector = dir.resolve("bench-detector.yaml");
        Files.writeString(detector, String.format(Locale.ROOT, """
                # Written by io.saeguard.bench.BenchSae for the pipeline benchmark: one feature of the synthetic SAE,
                # threshold at the top %.1f %% of the load generator's tokens (feature %d fires at all on %d of %d).
                id: bench-threshold
                sae: %s
                description: pipeline benchmark threshold rule on one synthetic feature
                rule:
                  kind: features
                  match: any
                  features:
                    - id: %d
                      threshold: %s
                      label: synthetic feature %d
                aggregate: token
                policy:
                  alert_at: 1.0
                  bands:
                    - min: 1.0
                      action: flag
                """, 100 * fireFraction, best, bestFires, poolTokens, saeId, best, Float.toString(threshold), best));

        Map<String, Object> out = new LinkedHashMap<>();
        out.put("params", params);
        out.put("sae_dir", saeDir.toAbsolutePath().toString());
        out.put("detector", detector.toAbsolutePath().toString());
        out.put("model", "synthetic");
        out.put("hook", "blocks.0.hook_resid_post");
        out.put("feature", best);
        out.put("threshold", threshold);
        out.put("pool_tokens_firing", firing);
        out.put("pool_tokens_feature_active", bestFires);
        out.put("write_seconds", writeS);
        String json = JSON.writeValueAsString(out);
        Files.writeString(summary, json);
        System.out.println(json);
    }

    /** JumpReLU codes of features 0..CANDIDATES-1 for the pool's tokens. */
    private static float[][] candidateCodes(SyntheticJumpRelu sae, int poolTokens, long poolSeed) {
        SaeShape s = sae.shape();
        float[] x = sae.input(poolTokens, poolSeed); // [tokens, d_in]
        // The first CANDIDATES columns of W_enc [d_in, d_sae] (row-major, generated in chunks).
        double[][] w = new double[CANDIDATES][s.dIn()];
        float[] chunk = new float[SyntheticJumpRelu.CHUNK_FLOATS];
        long total = (long) s.dIn() * s.dSae();
        for (int c = 0; (long) c * chunk.length < total; c++) {
            long base = (long) c * chunk.length;
            int n = (int) Math.min(chunk.length, total - base);
            float[] dst = n == chunk.length ? chunk : new float[n];
            sae.encoderChunk(c, dst);
            for (int j = 0; j < n; j++) {
                long flat = base + j;
                int col = (int) (flat % s.dSae());
                if (col < CANDIDATES) {
                    w[col][(int) (flat / s.dSae())] = dst[j];
                }
            }
        }
        float[] bEnc = sae.bEnc();
        float[] theta = sae.threshold();
        float[][] codes = new float[CANDIDATES][poolTokens];
        for (int f = 0; f < CANDIDATES; f++) {
            for (int t = 0; t < poolTokens; t++) {
                double pre = bEnc[f];
                for (int i = 0; i < s.dIn(); i++) {
                    pre += x[t * s.dIn() + i] * w[f][i];
                }
                codes[f][t] = pre > theta[f] && pre > 0 ? (float) pre : 0f;
            }
        }
        return codes;
    }
}
