package io.saeguard.bench;

import io.saeguard.sae.Sae;
import io.saeguard.sae.SaeInputException;
import io.saeguard.sae.engine.DeviceSae;
import io.saeguard.sae.engine.DeviceSpec;
import io.saeguard.sae.engine.EngineOptions;
import io.saeguard.sae.engine.SaeEngine;
import io.saeguard.sae.format.SaeLoader;
import io.saeguard.sae.lm.HiddenStateModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * How far {@code engine.cpu_bf16} moves the codes: the same tokens encoded by an F32 and a BF16
 * engine in one JVM, compared feature by feature, and (demo) the detector's decision per prompt.
 *
 * <pre>
 * java -cp bench/target/benchmarks.jar io.saeguard.bench.Bf16Agreement synthetic 2304x16384 2048
 * java -cp bench/target/benchmarks.jar io.saeguard.bench.Bf16Agreement demo   # run from the repository root
 * </pre>
 *
 * {@code synthetic}: the benchmark's random JumpReLU SAE and N(0, 1) inputs. {@code demo}: the demo's
 * TopK SAE on all-MiniLM-L6-v2's last layer, the hidden states of the demo's 246 prompts (built-in
 * model), and the demo detector's features rule (max over tokens, any feature at its threshold).
 */
public final class Bf16Agreement {
    private static final Path DEMO = Path.of("sidecar/src/main/resources/io/saeguard/sidecar/demo");

    private Bf16Agreement() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length == 3 && args[0].equals("synthetic")) {
            synthetic(SaeShape.parse(args[1]), Integer.parseInt(args[2]));
        } else if (args.length == 1 && args[0].equals("demo")) {
            demo();
        } else {
            System.err.println("usage: Bf16Agreement synthetic D_INxD_SAE TOKENS | Bf16Agreement demo");
            System.exit(2);
        }
    }

    private static SaeEngine engine(boolean bf16) {
        int threads = Runtime.getRuntime().availableProcessors();
        return SaeEngine.start(new EngineOptions(DeviceSpec.CPU, EngineOptions.defaultCacheDir(), threads, 1, false, bf16));
    }

    private static void synthetic(SaeShape shape, int tokens) throws SaeInputException {
        SyntheticJumpRelu synthetic = new SyntheticJumpRelu(shape, EncodeBenchmark.SEED);
        Sae sae = synthetic.inMemory();
        float[] x = synthetic.input(tokens, EncodeBenchmark.SEED + tokens);
        try (SaeEngine f32 = engine(false); SaeEngine bf16 = engine(true)) {
            Codes a = encode(f32, sae, x, tokens, 512);
            Codes b = encode(bf16, sae, x, tokens, 512);
            System.out.printf(Locale.ROOT, "synthetic JumpReLU %s, %d tokens (N(0,1) inputs):%n%s", shape, tokens, compare(a, b));
        }
    }

    private static void demo() throws Exception {
        Sae sae = SaeLoader.load(DEMO);
        List<String> prompts = new ArrayList<>();
        for (String line : Files.readAllLines(DEMO.resolve("prompts.tsv"))) {
            int tab = line.indexOf('\t');
            if (tab > 0) {
                prompts.add(line.substring(tab + 1));
            }
        }
        Map<Integer, Float> rule = features(Files.readString(DEMO.resolve("detector.yaml")));
        try (SaeEngine f32 = engine(false); SaeEngine bf16 = engine(true);
                HiddenStateModel model = HiddenStateModel.open(HiddenStateModel.BUILTIN_MINILM, null, 512, EngineOptions.defaultCacheDir())) {
            List<HiddenStateModel.Result> states = model.run(prompts);
            int total = states.stream().mapToInt(HiddenStateModel.Result::tokens).sum();
            int d = sae.config().dIn();
            float[] x = new float[total * d];
            int[] firstToken = new int[states.size() + 1];
            int at = 0;
            for (int i = 0; i < states.size(); i++) {
                firstToken[i] = at;
                System.arraycopy(states.get(i).rows(), 0, x, at * d, states.get(i).tokens() * d);
                at += states.get(i).tokens();
            }
            firstToken[states.size()] = at;
            Codes a = encode(f32, sae, x, total, 512);
            Codes b = encode(bf16, sae, x, total, 512);
            int flagged32 = 0;
            int flagged16 = 0;
            int differ = 0;
            for (int p = 0; p < states.size(); p++) {
                boolean fa = fires(a, rule, firstToken[p], firstToken[p + 1]);
                boolean fb = fires(b, rule, firstToken[p], firstToken[p + 1]);
                flagged32 += fa ? 1 : 0;
                flagged16 += fb ? 1 : 0;
                differ += fa != fb ? 1 : 0;
            }
            System.out.printf(Locale.ROOT, "demo TopK SAE (k %d, d_sae %d) on all-MiniLM-L6-v2 hidden states of %d prompts, %d tokens:%n%s"
                    + "  detector '%s' (%d features): F32 flags %d prompts, BF16 flags %d; decisions differ on %d of %d prompts%n",
                    sae.config().k().orElse(0), sae.config().dSae(), prompts.size(), total, compare(a, b), "computers", rule.size(),
                    flagged32, flagged16, differ, prompts.size());
        }
    }

    /** Dense codes {@code [tokens, d_sae]}. */
    private record Codes(int tokens, int dSae, float[] values) {
    }

    private static Codes encode(SaeEngine engine, Sae sae, float[] x, int tokens, int batch) throws SaeInputException {
        int d = sae.config().dIn();
        int dSae = sae.config().dSae();
        float[] out = new float[tokens * dSae];
        try (DeviceSae device = engine.load(sae, dSae)) {
            for (int from = 0; from < tokens; from += batch) {
                int n = Math.min(batch, tokens - from);
                float[] chunk = Arrays.copyOfRange(x, from * d, (from + n) * d);
                System.arraycopy(device.encodeDense(chunk, n, false).features(), 0, out, from * dSae, n * dSae);
            }
        }
        return new Codes(tokens, dSae, out);
    }

    private static String compare(Codes a, Codes b) {
        long activeA = 0;
        long activeB = 0;
        long both = 0;
        int identical = 0;
        List<Double> errors = new ArrayList<>();
        for (int t = 0; t < a.tokens(); t++) {
            int base = t * a.dSae();
            double scale = 0;
            for (int f = 0; f < a.dSae(); f++) {
                scale = Math.max(scale, Math.abs(a.values()[base + f]));
            }
            boolean same = true;
            for (int f = 0; f < a.dSae(); f++) {
                boolean inA = a.values()[base + f] != 0;
                boolean inB = b.values()[base + f] != 0;
                activeA += inA ? 1 : 0;
                activeB += inB ? 1 : 0;
                same &= inA == inB;
                if (inA && inB) {
                    both++;
                    errors.add(Math.abs(a.values()[base + f] - b.values()[base + f]) / Math.max(scale, 1e-12));
                }
            }
            identical += same ? 1 : 0;
        }
        errors.sort(null);
        double median = errors.isEmpty() ? 0 : errors.get(errors.size() / 2);
        double p99 = errors.isEmpty() ? 0 : errors.get((int) Math.min(errors.size() - 1, Math.ceil(errors.size() * 0.99) - 1));
        double max = errors.isEmpty() ? 0 : errors.get(errors.size() - 1);
        return String.format(Locale.ROOT, "  active features per token: F32 %.1f, BF16 %.1f%n"
                + "  of F32's active features BF16 keeps %.3f %%; of BF16's, %.3f %% are F32's; tokens with identical active sets %.1f %%%n"
                + "  |BF16 - F32| on features active in both, relative to the token's largest F32 code: median %.2e, p99 %.2e, max %.2e%n",
                (double) activeA / a.tokens(), (double) activeB / a.tokens(), 100.0 * both / Math.max(1, activeA),
                100.0 * both / Math.max(1, activeB), 100.0 * identical / a.tokens(), median, p99, max);
    }

    private static boolean fires(Codes c, Map<Integer, Float> rule, int fromToken, int toToken) {
        for (int t = fromToken; t < toToken; t++) {
            for (Map.Entry<Integer, Float> e : rule.entrySet()) {
                if (c.values()[t * c.dSae() + e.getKey()] >= e.getValue()) {
                    return true;
                }
            }
        }
        return false;
    }

    /** The {@code features} rule's ids and thresholds from the demo detector's YAML. */
    private static Map<Integer, Float> features(String yaml) {
        Map<Integer, Float> out = new LinkedHashMap<>();
        Matcher m = Pattern.compile("- id: (\\d+)\\s+threshold: ([0-9.]+)").matcher(yaml);
        while (m.find()) {
            out.put(Integer.parseInt(m.group(1)), Float.parseFloat(m.group(2)));
        }
        if (out.isEmpty()) {
            throw new IllegalStateException("no features rule in the demo detector");
        }
        return out;
    }
}
