package io.saeguard.bench;

import io.saeguard.detectors.RequestSnapshot;
import io.saeguard.detectors.RequestSnapshot.DetectorSnapshot;
import io.saeguard.detectors.RequestSnapshot.Positions;
import io.saeguard.detectors.RequestSnapshot.SaeProgress;
import io.saeguard.detectors.RequestSnapshotCodec;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The per-record request-state snapshot the engine thread writes for {@code saeguard.state}
 * ({@link RequestSnapshotCodec#encode}): one per decided record, since the request's {@code nextSeq} moves with each.
 * With one token per record it was among the engine thread's largest costs (bench/README.md). The snapshot is a
 * request of the load generator's shape (one SAE, an id like its own) with {@code detectors} detectors, each with a
 * window ring of {@code window} cells (0: none) and two counted ranges above its contiguous prefix.
 *
 * <pre>java -jar bench/target/benchmarks.jar SnapshotCodecBenchmark</pre>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"-Xms256m", "-Xmx1g"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class SnapshotCodecBenchmark {
    @Param({"1", "3"})
    public int detectors;

    @Param({"0", "64"})
    public int window;

    private RequestSnapshot snapshot;

    @Setup
    public void setUp() {
        List<DetectorSnapshot> ds = new ArrayList<>();
        for (int i = 0; i < detectors; i++) {
            double[] ring = new double[window];
            for (int r = 0; r < window; r++) {
                ring[r] = (r * 7 + i) % 5 * 0.25;
            }
            ds.add(new DetectorSnapshot("detector-" + i, 0x5eed_0000L + i, new Positions(1_000, 0, new long[] {1_002, 1_010, 1_020, 1_021}),
                    1_000, 12, 3.5, 812.25, ring, window == 0 ? 0 : 3, Math.min(window, 40), 2, 0.125, -1, 1, 42, 17.5));
        }
        snapshot = new RequestSnapshot("lg1a2b3c-1234", 1_001, 1_765_000_000_000L, List.of(new SaeProgress("bench", false)), ds);
    }

    @Benchmark
    public byte[] encode() {
        return RequestSnapshotCodec.encode(snapshot);
    }
}
