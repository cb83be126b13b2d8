package io.saeguard.sidecar.pipeline;

import io.saeguard.topics.DecodeException;
import io.saeguard.topics.activation.ActivationChunk;
import io.saeguard.topics.activation.ActivationCodec;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerRecord;

/**
 * Decodes and checks one activation record: its safetensors, its key against its request id, its SAE route, its width,
 * its size, and that every value is finite (the same pass gives each token's L2 norm). Pure and stateless: any thread
 * may call it, which is how the poll loop spreads decoding over {@code batching.decode_threads} while it alone keeps
 * the order, the offsets and the dead-letter writes. The record's activations are not copied: they stay in the
 * record's bytes, in its wire dtype, until the engine widens them into its batch ({@link Activations}).
 */
final class ActivationValidator {
    /** What a check decided. */
    sealed interface Outcome {
    }

    /** A record to hand to the engine. */
    record Accepted(ActivationChunk chunk, String sae, float[] norms) implements Outcome {
    }

    /** A record for the dead-letter topic, with why. */
    record Rejected(FailureReason reason, Exception error) implements Outcome {
    }

    private final SaeRouter router;
    private final Map<String, Integer> dIns;
    private final int maxRecordTokens;
    /** One row of F32 per thread: the finite check and norms read a record row by row through it. */
    private final ThreadLocal<float[]> row = ThreadLocal.withInitial(() -> new float[0]);

    /** @param dIns each SAE's {@code d_in}, by the router's SAE ids */
    ActivationValidator(SaeRouter router, Map<String, Integer> dIns, int maxRecordTokens) {
        this.router = router;
        this.dIns = Map.copyOf(dIns);
        this.maxRecordTokens = maxRecordTokens;
    }

    Outcome check(ConsumerRecord<String, byte[]> r) {
        if (r.value() == null) {
            return new Rejected(FailureReason.NULL_VALUE, new DecodeException(DecodeException.Reason.MISSING_TENSOR,
                    "record has no value (a tombstone?)"));
        }
        ActivationChunk chunk;
        try {
            chunk = ActivationCodec.decode(r.value());
        } catch (DecodeException e) {
            return new Rejected(FailureReason.of(e), e);
        }
        if (r.key() != null && !r.key().equals(chunk.requestId())) {
            return new Rejected(FailureReason.KEY_MISMATCH, new IllegalArgumentException("record key '" + r.key()
                    + "' differs from the request_id in the record's metadata; key activation records by request id"));
        }
        String sae = router.route(chunk).orElse(null);
        if (sae == null) {
            return new Rejected(FailureReason.UNKNOWN_SAE, new IllegalArgumentException(router.explain(chunk)));
        }
        int dIn = dIns.get(sae);
        if (chunk.dIn() != dIn) {
            return new Rejected(FailureReason.WRONG_D_IN, new IllegalArgumentException("activations have d_in " + chunk.dIn()
                    + " but SAE '" + sae + "' expects d_in " + dIn));
        }
        if (chunk.tokens() > maxRecordTokens) {
            return new Rejected(FailureReason.OVERSIZE, new IllegalArgumentException("record holds " + chunk.tokens()
                    + " tokens, more than batching.max_record_tokens = " + maxRecordTokens + "; chunk it smaller"));
        }
        float[] scratch = row.get();
        if (scratch.length < dIn) {
            scratch = new float[dIn];
            row.set(scratch);
        }
        // One pass gives the detectors' token norms and the finite check (the poll thread was a whole core at 55k
        // records/s on a GPU, bench/README.md); the record is scanned again only to name a bad value.
        float[] norms = TokenNorms.ofFinite(chunk, scratch);
        if (norms == null) {
            return new Rejected(FailureReason.NON_FINITE, new IllegalArgumentException(TokenNorms.describeNonFinite(chunk, scratch)));
        }
        return new Accepted(chunk, sae, norms);
    }
}
