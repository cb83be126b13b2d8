package io.saeguard.sae.train;

import io.saeguard.sae.SaeInputException;
import io.saeguard.sae.engine.DeviceSae;
import java.io.IOException;

/**
 * Measures a loaded SAE (any format, composed ones included) with the runtime's own encoder:
 * what {@code saeguard train} reports for the written files, and how a residual SAE's gain over
 * its base is shown.
 */
public final class SaeEvaluation {
    private SaeEvaluation() {
    }

    /** FVU, L0 and dead latents of {@code sae} over every row of {@code source}, {@code batch} rows per engine call. */
    public static ReconstructionQuality evaluate(DeviceSae sae, ActivationSource source, int batch) throws IOException {
        int dIn = source.dIn();
        if (dIn != sae.config().dIn()) {
            throw new ActivationDataException(source.describe() + ": rows have d_in " + dIn + " but the SAE at " + sae.config().path()
                    + " expects d_in " + sae.config().dIn());
        }
        ReconstructionStats stats = new ReconstructionStats(dIn, sae.config().dSae());
        float[] buf = new float[batch * dIn];
        try (ActivationSource.Pass pass = source.pass(0)) {
            int m;
            while ((m = pass.next(buf, batch)) > 0) {
                DeviceSae.Dense d;
                try {
                    d = sae.encodeDense(buf, m, true);
                } catch (SaeInputException e) {
                    throw new ActivationDataException(source.describe() + ": " + e.getMessage(), e);
                }
                stats.add(buf, d.reconstruction().orElseThrow(), d.features(), m);
            }
        }
        return stats.quality();
    }
}
