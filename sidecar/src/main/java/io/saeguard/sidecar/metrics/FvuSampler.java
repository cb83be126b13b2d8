package io.saeguard.sidecar.metrics;

import java.util.Arrays;
import java.util.Objects;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Samples one SAE's input rows for the FVU metric ({@code saeguard_sae_fvu}) and reconstructs them in calls of
 * {@value #ROWS} rows, recording each pair in the SAE's {@link FeatureStats}. Sampling happens after a batch's
 * decisions are out, so it never delays them.
 *
 * <p>Not thread-safe: the engine thread owns it; {@link #reconstruct(float[], int, Reconstruction)} of rows it
 * {@linkplain #take took} may run on any thread ({@link FeatureStats} is).
 */
public final class FvuSampler {
    private static final Logger LOGGER = LoggerFactory.getLogger(FvuSampler.class);

    /**
     * Rows are reconstructed this many at a time. A reconstruct call encodes and decodes its rows, streaming all of
     * W_enc and W_dec whatever its row count: on 2 cores at 2304x16384 (BF16 encoder GEMM, F32 decode) one call took
     * 40 ms for 32 rows, 59 ms for 64 and 106 ms for 128, i.e. 1.25 against 0.83 ms per row, while the batch encode
     * costs 0.28 ms per token (bench/README.md). At the default 1 % sample rate, 32-row calls cost 4–9 % of the
     * engine thread in the pipeline benchmark. On the CPU the calls run on the metrics encoder's thread, where a larger
     * group delays no decision and costs less per row.
     */
    public static final int ROWS = 256;

    /**
     * When the engine idles, pending rows are reconstructed once the oldest has waited this long (so the metric stays
     * current at low traffic). Reconstructing them at every idle moment meant calls of one to a few rows, each costing
     * nearly a full pass over both weight matrices, at exactly the moderate loads where the engine idles between
     * small batches.
     */
    public static final long IDLE_FLUSH_NANOS = TimeUnit.SECONDS.toNanos(2);

    /** Encodes and decodes {@code count} rows of {@code rows} ({@code [count, d_in]}), returning the reconstructions. */
    @FunctionalInterface
    public interface Reconstruction {
        float[] reconstruct(float[] rows, int count) throws Exception;
    }

    private final FeatureStats stats;
    private final int dIn;
    private final RowSample sample;

    /**
     * @param stats  where the reconstructions are recorded
     * @param dIn    the SAE's input width
     * @param rate   the fraction of tokens sampled ({@code metrics.fvu_sample_rate}); 0 turns sampling off
     * @param random the sampling draws
     */
    public FvuSampler(FeatureStats stats, int dIn, double rate, Random random) {
        this.stats = Objects.requireNonNull(stats, "stats");
        this.dIn = dIn;
        this.sample = new RowSample(dIn, ROWS, rate, random);
    }

    /**
     * Samples each of the batch's tokens with probability {@code rate} while fewer than {@value #ROWS} are pending.
     *
     * @param x         the batch's rows, {@code [n, d_in]} (copied from, not kept)
     * @param fromToken the first row to consider
     * @param tokens    how many rows from there
     * @return whether {@value #ROWS} rows are pending now (reconstruct them)
     */
    public boolean sample(float[] x, int fromToken, int tokens, long nowNanos) {
        return sample.draw(x, fromToken, tokens, 0, nowNanos);
    }

    /** Whether the engine, being idle, should reconstruct the pending rows now (the oldest waited {@link #IDLE_FLUSH_NANOS}). */
    public boolean idleDue(long nowNanos) {
        return sample.waited(nowNanos, IDLE_FLUSH_NANOS);
    }

    /** Reconstructs the pending rows (if any) in one call and records them; a failure is logged at DEBUG and the rows dropped. */
    public void reconstruct(Reconstruction reconstruction) {
        float[] rows = take();
        if (rows.length > 0) {
            reconstruct(rows, rows.length / dIn, reconstruction);
        }
    }

    /** Empties the sample into a copy of its rows ({@code [n, d_in]}; empty when none is pending). */
    public float[] take() {
        int n = sample.take();
        return Arrays.copyOf(sample.rows(), n * dIn);
    }

    /** Reconstructs {@code n} taken rows and records them, on any thread; a failure is logged at DEBUG and the rows dropped. */
    public void reconstruct(float[] rows, int n, Reconstruction reconstruction) {
        try {
            float[] rec = reconstruction.reconstruct(rows, n);
            for (int i = 0; i < n; i++) {
                stats.recordReconstruction(Arrays.copyOfRange(rows, i * dIn, (i + 1) * dIn), Arrays.copyOfRange(rec, i * dIn, (i + 1) * dIn));
            }
        } catch (Exception e) {
            LOGGER.atDebug().log("FVU sample failed: {}", e.toString());
        }
    }
}
