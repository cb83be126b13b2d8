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
 * sampled rows are copied aside and encoded whole {@value #ROWS} at a time, after a batch's decisions are out (on the
 * CPU by a thread of their own), so sampling never delays a decision.
 *
 * <p>Not thread-safe: the engine thread owns it; {@link #encode(Taken, FullEncode)} of rows it took may run on any
 * thread ({@link FeatureStats} is).
 */
public final class FullCodeSampler {
    private static final Logger LOGGER = LoggerFactory.getLogger(FullCodeSampler.class);

    /**
     * Rows are encoded this many at a time. A full encode call streams all of {@code W_enc} whatever its row count
     * (151 MB at 2304x16384 F32; memory-bound at small batches: 128 tokens/s at batch 1, 1,374 at batch 64, 1,881 at
     * batch 512 on the 2-core benchmark machine), so larger groups cost less per row. On the CPU the call runs on the
     * metrics encoder's thread, where its ~0.15 s delays no decision; it only delays the metrics by
     * {@code 256 / fraction} tokens at most (2 s when the engine idles).
     */
    public static final int ROWS = 256;

    /** When the engine idles, pending rows are encoded once the oldest has waited this long (the metrics stay current at low traffic). */
    public static final long IDLE_FLUSH_NANOS = TimeUnit.SECONDS.toNanos(2);

    /** Encodes {@code count} rows of {@code rows} ({@code [count, d_in]}) to their full codes. */
    @FunctionalInterface
    public interface FullEncode {
        SparseCodes encode(float[] rows, int count) throws Exception;
    }

    /** Rows taken out of the sample to be encoded: {@code rows} {@code [count, d_in]} and their stream positions. */
    public record Taken(float[] rows, int count, long[] positions) {
    }

    private final FeatureStats stats;
    private final int dIn;
    private final RowSample sample;

    /**
     * @param stats    where the sampled codes are recorded
     * @param dIn      the SAE's input width
     * @param fraction the fraction of tokens sampled ({@code metrics.full_encode_fraction}); 0 turns sampling off
     * @param random   the sampling draws
     */
    public FullCodeSampler(FeatureStats stats, int dIn, double fraction, Random random) {
        this.stats = Objects.requireNonNull(stats, "stats");
        this.dIn = dIn;
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

    /** Samples each token with this probability from now on ({@link SampleFraction}); no effect when created with fraction 0. */
    public void fraction(double fraction) {
        sample.rate(fraction);
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
        return take().flatMap(t -> encode(t, encode));
    }

    /** Empties the sample into a copy (empty when no row is pending), to be encoded by {@link #encode(Taken, FullEncode)}. */
    public Optional<Taken> take() {
        int n = sample.take();
        if (n == 0) {
            return Optional.empty();
        }
        return Optional.of(new Taken(java.util.Arrays.copyOf(sample.rows(), n * dIn), n, java.util.Arrays.copyOf(sample.positions(), n)));
    }

    /** Encodes rows taken from this sample and records their codes, on any thread; a failure is logged at WARN and the rows dropped. */
    public Optional<SparseCodes> encode(Taken taken, FullEncode encode) {
        try {
            SparseCodes codes = encode.encode(taken.rows(), taken.count());
            stats.recordSample(codes, taken.positions());
            return Optional.of(codes);
        } catch (Exception e) {
            LOGGER.atWarn().addKeyValue("sae", stats.sae()).log("full-code sample failed: {}", e.toString());
            return Optional.empty();
        }
    }
}
