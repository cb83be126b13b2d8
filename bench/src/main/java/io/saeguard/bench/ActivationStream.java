package io.saeguard.bench;

import io.saeguard.topics.activation.ActivationCodec;
import io.saeguard.topics.events.Phase;
import io.saeguard.topics.safetensors.DType;
import io.saeguard.topics.safetensors.HalfFloats;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The records an LLM server would publish for {@code requests} concurrent requests: each request is a
 * sequence of chunks of {@code tokensPerRecord} tokens ({@code position} 0, n, 2n, ...), the last one
 * {@code final}; the stream visits the live requests round-robin (a decoding server emits one token of
 * every running request per forward pass), and a finished request is replaced by a new one. The
 * first request of each slot is shorter in proportion to the slot index so that requests do not all
 * start and end in the same step.
 *
 * <p>Token rows are taken cyclically from a fixed pool of N(0, 1) rows ({@link SyntheticJumpRelu#input}
 * with the same seed {@link BenchSae} used to pick the detector threshold). The pool is encoded once in the
 * wire dtype, with its first {@code tokensPerRecord - 1} rows repeated at its end so that every record's rows
 * are one contiguous slice: generating a record costs its header and one copy of its bytes, not random
 * numbers, conversions or intermediate arrays (the generator shares the cores with the system it measures).
 * Not thread-safe: one producer thread owns it.
 */
final class ActivationStream {
    /** One record to send. */
    record Next(String requestId, long position, int tokens, byte[] value) {
    }

    private final Workload workload;
    private final String runId;
    private final ByteBuffer pool; // little-endian rows in the wire dtype: poolTokens + tokensPerRecord - 1 of them
    private final int rowBytes;
    private final int poolTokens;
    private final String[] requestIds;
    private final long[] positions;
    private final long[] lengths;
    private int slot;
    private int poolCursor;
    private long started;

    ActivationStream(Workload workload, String runId, int poolTokens, long poolSeed) {
        this.workload = workload;
        this.runId = runId;
        this.poolTokens = poolTokens;
        this.rowBytes = workload.dIn() * workload.dtype().bytes();
        this.pool = encodePool(new SyntheticJumpRelu(new SaeShape(workload.dIn(), 1), 0).input(poolTokens, poolSeed), workload,
                poolTokens);
        this.requestIds = new String[workload.requests()];
        this.positions = new long[workload.requests()];
        this.lengths = new long[workload.requests()];
    }

    /** The next record, round-robin over the live requests. */
    Next next() {
        int s = slot;
        slot = (slot + 1) % requestIds.length;
        if (requestIds[s] == null) {
            requestIds[s] = runId + "-" + started;
            positions[s] = 0;
            long full = workload.requestTokens();
            // Stagger the first generation of requests: slot s starts (s+1)/R of a full request.
            lengths[s] = started < requestIds.length ? Math.max(workload.tokensPerRecord(), full * (s + 1) / requestIds.length) : full;
            started++;
        }
        int n = workload.tokensPerRecord();
        long position = positions[s];
        boolean isFinal = position + n >= lengths[s];
        // rows: [n, d_in], the pool's rows poolCursor .. poolCursor + n - 1 (contiguous: the pool's head repeats at its end)
        ByteBuffer rows = pool.slice(poolCursor * rowBytes, n * rowBytes);
        poolCursor = (poolCursor + n) % poolTokens;
        String id = requestIds[s];
        byte[] value = ActivationCodec.builder(id).model(workload.model()).hook(workload.hook()).position(position)
                .phase(workload.phase()).isFinal(isFinal).activations(workload.dtype(), n, workload.dIn(), rows).encode();
        if (isFinal) {
            requestIds[s] = null;
        } else {
            positions[s] = position + n;
        }
        return new Next(id, position, n, value);
    }

    /** {@code rows} ({@code [poolTokens, d_in]}) in the workload's dtype, then its first {@code tokensPerRecord - 1} rows again. */
    static ByteBuffer encodePool(float[] rows, Workload workload, int poolTokens) {
        int dIn = workload.dIn();
        int total = poolTokens + workload.tokensPerRecord() - 1;
        ByteBuffer out = ByteBuffer.allocate(Math.multiplyExact(total, dIn * workload.dtype().bytes())).order(ByteOrder.LITTLE_ENDIAN);
        for (int r = 0; r < total; r++) {
            int from = (r % poolTokens) * dIn;
            for (int j = 0; j < dIn; j++) {
                float v = rows[from + j];
                switch (workload.dtype()) {
                    case F32 -> out.putFloat(v);
                    case F16 -> out.putShort(HalfFloats.floatToF16(v));
                    case BF16 -> out.putShort(HalfFloats.floatToBf16(v));
                    default -> throw new IllegalArgumentException("activations must be F32, F16 or BF16, not " + workload.dtype());
                }
            }
        }
        return out.flip();
    }

    /**
     * The shape of the traffic.
     *
     * @param dIn             activation width
     * @param tokensPerRecord tokens per activation record (1: a generation stream; 64: prompt chunks)
     * @param requests        concurrent requests
     * @param requestTokens   tokens per request (then {@code final} and a new request id)
     * @param dtype           wire dtype of {@code activations}
     * @param model           {@code model} metadata (routes the record to an SAE)
     * @param hook            {@code hook} metadata
     * @param phase           {@code phase} metadata
     */
    record Workload(int dIn, int tokensPerRecord, int requests, int requestTokens, DType dtype, String model, String hook, Phase phase) {
        Workload {
            if (dIn < 1 || tokensPerRecord < 1 || requests < 1 || requestTokens < tokensPerRecord) {
                throw new IllegalArgumentException("workload: d_in, tokens per record and requests must be >= 1 and request tokens"
                        + " >= tokens per record, got d_in " + dIn + ", " + tokensPerRecord + " tokens/record, " + requests
                        + " requests, " + requestTokens + " tokens/request");
            }
        }
    }
}
