package io.saeguard.sidecar.metrics;

import io.saeguard.topics.codes.SparseCodes;
import java.util.Objects;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Samples the tokens of an SAE on the watched-feature encode whose full codes feed its {@link FeatureStats}: top-N
 * features, unwatched fire rates, drift, dead features and the baseline calibration are computed on them
 * (docs/algorithms.md#feature-metrics). Each token is sampled with probability {@code metrics.full_encode_fraction};
 * sampled rows are copied aside and encoded whole {@value #ROWS} at a time, after a batch's decisions are out, so
 * sampling never delays a decision.
 *
 * <p>Not thread-safe: the engine thread owns it (the encode runs on its device).
 */
public final class FullCodeSampler {
    private static final Logger LOGGER = LoggerFactory.getLogger(FullCodeSampler.class);

    /**
     * Rows are encoded this many at a time. A full encode call streams all of {@code W_enc} whatever its row count
     * (151 MB at 2304x16384 F32; memory-bound below ~64 rows: 128 tokens/s at batch 1, 1,374 at batch 64, 1,881 at
     * batch 512 on the 2-core benchmark machine), while the call holds the engine thread: at 64 rows it costs ~47 ms
     * there, a delay the next batch's decisions may see once per {@code 64 / fraction} tokens.
     */
    public static final int ROWS = 64;

    /** When the engine idles, pending rows are encoded once the oldest has waited this long (the metrics stay current at low traffic). */
    public static final long IDLE_FLUSH_NANOS = TimeUnit.SECONDS.toNanos(2);

    /** Encodes {@code count} rows of {@code rows} ({@code [count, d_in]}) to their full codes. */
    @FunctionalInterface
    public interface FullEncode {
        SparseCodes encode(float[] rows, int count) throws Exception;
    }

    private final FeatureStats stats;
    private final RowSample sample;

    /**
     * @param stats    where the sampled codes are recorded
     * @param dIn      the SAE's input width
     * @param fraction the fraction of tokens sampled ({@code metrics.full_encode_fraction}); 0 turns sampling off
     * @param random   the sampling draws
     */
    public FullCodeSampler(FeatureStats stats, int dIn, double fraction, Random random) {
        this.stats = Objects.requireNonNull(stats, "stats");
        this.sample = new RowSample(dIn, ROWS, fraction, random);
    }

    /**
     * Samples each of {@code tokens} rows of {@code x} from {@code fromRow} with probability {@code fraction} while
     * fewer than {@value #ROWS} are pending.
     *
     * @param firstPosition the stream position ({@link FeatureStats#tokens()} index) of row {@code fromRow}
     * @return whether {@value #ROWS} rows are pending now (encode them)
     */
    public boolean sample(float[] x, int fromRow, int tokens, long firstPosition, long nowNanos) {
        return sample.draw(x, fromRow, tokens, firstPosition, nowNanos);
    }

    /** Rows waiting to be encoded. */
    public int pending() {
        return sample.pending();
    }

    /** Whether the engine, being idle, should encode the pending rows now (the oldest waited {@link #IDLE_FLUSH_NANOS}). */
    public boolean idleDue(long nowNanos) {
        return sample.waited(nowNanos, IDLE_FLUSH_NANOS);
    }

    /**
     * Encodes the pending rows (if any) in one call and records their codes; returns them (for the truncation count).
     * A failure is logged at WARN and the rows dropped: the sample is a metric, never a decision.
     */
    public Optional<SparseCodes> encode(FullEncode encode) {
        int n = sample.take();
        if (n == 0) {
            return Optional.empty();
        }
        try {
            SparseCodes codes = encode.encode(sample.rows(), n);
            stats.recordSample(codes, java.util.Arrays.copyOf(sample.positions(), n));
            return Optional.of(codes);
        } catch (Exception e) {
            LOGGER.atWarn().addKeyValue("sae", stats.sae()).log("full-code sample failed: {}", e.toString());
            return Optional.empty();
        }
    }
}
