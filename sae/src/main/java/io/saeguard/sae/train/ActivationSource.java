package io.saeguard.sae.train;

import java.io.IOException;
import java.util.OptionalLong;

/**
 * Where an SAE's training rows come from: F32 activation vectors of width {@link #dIn()}, handed
 * out in batches. Sources today: activation files ({@link SafetensorsActivationSource}) and a base
 * SAE's reconstruction error over another source ({@link ResidualActivationSource}); a source that
 * runs a text corpus through a prompt model plugs in here too.
 *
 * <p><b>Contract.</b> {@link #pass(long)} starts an independent pass over every row of the source;
 * the order within a pass may depend on its seed (a file source shuffles) but must be a function
 * of the seed alone, so training is reproducible. Rows are finite (a source rejects NaN and
 * infinities with an error naming where the row came from).
 *
 * <p><b>Threading and lifecycle.</b> A source and its passes are used by one thread (the trainer's,
 * which may also be an SAE engine's thread: sources may use an {@code SaeEngine} confined to it).
 * At most one pass is open at a time. The caller closes passes and the source; closing the source
 * releases what it holds (mapped files, models) and does not close sources it wraps unless it
 * documents so.
 */
public interface ActivationSource extends AutoCloseable {
    /** Width of every row. */
    int dIn();

    /** Rows in one pass, when the source knows it in advance (files do; a streamed corpus may not). */
    OptionalLong rows();

    /** Starts a pass over all rows, in an order fixed by {@code seed}. */
    Pass pass(long seed) throws IOException;

    /** A short description for logs and reports, e.g. the file or directory. */
    String describe();

    @Override
    void close() throws IOException;

    /** One pass over a source's rows. */
    interface Pass extends AutoCloseable {
        /**
         * Writes {@code min(maxRows, rows left in the pass)} rows, row-major {@code [rows, d_in]},
         * into {@code dst} from index 0, and returns how many: fewer than {@code maxRows} only at
         * the end of the pass, 0 once it is over.
         */
        int next(float[] dst, int maxRows) throws IOException;

        @Override
        void close() throws IOException;
    }
}
