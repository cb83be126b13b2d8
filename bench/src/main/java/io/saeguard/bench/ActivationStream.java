package io.saeguard.bench;

import io.saeguard.topics.activation.ActivationCodec;
import io.saeguard.topics.events.Phase;
import io.saeguard.topics.safetensors.DType;

/**
 * The records an LLM server would publish for {@code requests} concurrent requests: each request is a
 * sequence of chunks of {@code tokensPerRecord} tokens ({@code position} 0, n, 2n, ...), the last one
 * {@code final}; the stream visits the live requests round-robin (a decoding server emits one token of
 * every running request per forward pass), and a finished request is replaced by a new one. The
 * first request of each slot is shorter in proportion to the slot index so that requests do not all
 * start and end in the same step.
 *
 * <p>Token rows are taken cyclically from a fixed pool of N(0, 1) rows ({@link SyntheticJumpRelu#input}
 * with the same seed {@link BenchSae} used to pick the detector threshold), so generating a record
 * costs a copy, not random numbers. Not thread-safe: one producer thread owns it.
 */
final class ActivationStream {
    /** One record to send. */
    record Next(String requestId, long position, int tokens, byte[] value) {
    }

    private final Workload workload;
    private final String runId;
    private final float[] pool;
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
        this.pool = new SyntheticJumpRelu(new SaeShape(workload.dIn(), 1), 0).input(poolTokens, poolSeed);
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
        int dIn = workload.dIn();
        long position = positions[s];
        boolean isFinal = position + n >= lengths[s];
        // rows: [n, d_in], taken cyclically from the pool
        float[] rows = new float[n * dIn];
        for (int t = 0; t < n; t++) {
            System.arraycopy(pool, poolCursor * dIn, rows, t * dIn, dIn);
            poolCursor = (poolCursor + 1) % poolTokens;
        }
        String id = requestIds[s];
        byte[] value = ActivationCodec.builder(id).model(workload.model()).hook(workload.hook()).position(position)
                .phase(workload.phase()).isFinal(isFinal).activations(workload.dtype(), n, dIn, rows).encode();
        if (isFinal) {
            requestIds[s] = null;
        } else {
            positions[s] = position + n;
        }
        return new Next(id, position, n, value);
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
