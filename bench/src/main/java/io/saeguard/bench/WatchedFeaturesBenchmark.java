package io.saeguard.bench;

import io.saeguard.sae.SaeInputException;
import io.saeguard.sae.SingleSae;
import io.saeguard.sae.engine.DeviceSae;
import io.saeguard.sae.engine.DeviceSpec;
import io.saeguard.sae.engine.EngineOptions;
import io.saeguard.sae.engine.SaeEngine;
import io.saeguard.topics.codes.SparseCodes;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The sidecar's two encode paths for one batch of a JumpReLU SAE (issue 18, docs/algorithms.md#watched-feature-encode):
 * {@link #full} ({@link DeviceSae#encode}: the whole GEMM, the rule and top-{@code max_active} read-back, what TopK
 * SAEs and the metrics' sample get) against {@link #watched} ({@link DeviceSae#encodeWatched} with {@code watched}
 * features drawn at random: input copy, the {@code d_in × |watched|} slice GEMM, the rule, dense read-back of the
 * watched columns, CSR). The same synthetic weights and inputs as {@link EncodeBenchmark}; setup prints how far the
 * two paths' watched codes are apart.
 *
 * <pre>java -jar bench/target/benchmarks.jar WatchedFeaturesBenchmark -p shape=2304x16384 -p batch=1,64,512</pre>
 *
 * <p>Threading as {@link EncodeBenchmark}: setup, invocations and tear-down run on one thread (the engine's).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"-Xms256m", "-Xmx1g", "-XX:MaxDirectMemorySize=6g"})
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 5, time = 1)
public class WatchedFeaturesBenchmark {
    /** The sidecar's default {@code max_active}. */
    static final int MAX_ACTIVE = 256;

    @Param({"2304x16384"})
    public String shape;

    @Param({"1", "64", "512"})
    public int batch;

    /** How many features the detectors read (a handful of feature rules and a DSG selection). */
    @Param({"20"})
    public int watched;

    private SaeEngine engine;
    private DeviceSae sae;
    private float[] x;

    @Setup(Level.Trial)
    public void setUp() throws SaeInputException {
        SaeShape s = SaeShape.parse(shape);
        int threads = Integer.getInteger("saeguard.bench.threads", Runtime.getRuntime().availableProcessors());
        engine = SaeEngine.start(new EngineOptions(DeviceSpec.CPU, EngineOptions.defaultCacheDir(), threads, 1, false));
        SyntheticJumpRelu synthetic = new SyntheticJumpRelu(s, EncodeBenchmark.SEED);
        SingleSae weights = synthetic.inMemory();
        sae = engine.load(weights, MAX_ACTIVE);
        x = synthetic.input(batch, EncodeBenchmark.SEED + batch);
        Random r = new Random(EncodeBenchmark.SEED);
        List<Integer> ids = new ArrayList<>();
        while (ids.size() < watched) {
            int f = r.nextInt(s.dSae());
            if (!ids.contains(f)) {
                ids.add(f);
            }
        }
        sae.watch(ids);
        SparseCodes all = sae.encode("bench", x, batch);
        SparseCodes mine = sae.encodeWatched("bench", x, batch, false);
        double maxDiff = 0;
        long fires = 0;
        long capped = 0; // fires of a watched feature the full encode dropped: outside the token's max_active largest
        for (int t = 0; t < batch; t++) {
            for (int f : ids) {
                float w = mine.value(t, f);
                float a = all.value(t, f);
                fires += w != 0 ? 1 : 0;
                if (w != 0 && a == 0 && all.activeCount(t) == MAX_ACTIVE) {
                    capped++;
                } else {
                    maxDiff = Math.max(maxDiff, Math.abs(a - w));
                }
            }
        }
        System.out.printf(Locale.ROOT, "%n[saeguard-bench] %s batch %d, %d watched features: %d fires (%d of them beyond the full encode's "
                + "max_active %d), max |full - watched| elsewhere %.3g, intra-op threads %d%n", s, batch, watched, fires, capped, MAX_ACTIVE,
                maxDiff, threads);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        sae.close();
        engine.close();
    }

    @Benchmark
    public SparseCodes full() throws SaeInputException {
        return sae.encode("bench", x, batch, true);
    }

    @Benchmark
    public SparseCodes watched() throws SaeInputException {
        return sae.encodeWatched("bench", x, batch, true);
    }
}
