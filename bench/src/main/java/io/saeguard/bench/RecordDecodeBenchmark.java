package io.saeguard.bench;

import io.saeguard.topics.DecodeException;
import io.saeguard.topics.activation.ActivationChunk;
import io.saeguard.topics.activation.ActivationCodec;
import io.saeguard.topics.events.Phase;
import io.saeguard.topics.safetensors.DType;
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
 * The poll thread's per-record parse ({@link ActivationCodec#decode}: the safetensors header, its metadata and tensor
 * entries, views of the values; no copy of them) of a record as the load generator writes it: {@code tokens} tokens of
 * d_in 2304 in F32 with the request's metadata. With one token per record the parse is paid per token.
 *
 * <pre>java -jar bench/target/benchmarks.jar RecordDecodeBenchmark</pre>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"-Xms256m", "-Xmx1g"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class RecordDecodeBenchmark {
    @Param({"1", "64"})
    public int tokens;

    private byte[] record;

    @Setup
    public void setUp() {
        float[] rows = new SyntheticJumpRelu(new SaeShape(2304, 1), 0).input(tokens, 7);
        record = ActivationCodec.builder("lg1a2b3c-1234").model("gemma-2-2b").hook("blocks.12.hook_resid_post").position(1_000)
                .phase(Phase.GENERATION).isFinal(false).activations(DType.F32, tokens, 2304, rows).encode();
    }

    @Benchmark
    public ActivationChunk decode() throws DecodeException {
        return ActivationCodec.decode(record);
    }
}
