package io.saeguard.sae;

import java.util.Arrays;
import java.util.Objects;
import java.util.Optional;

/**
 * One dictionary. Logical orientations are SAELens': {@code wEnc [d_in, d_sae]}, {@code wDec [d_sae, d_in]},
 * {@code bEnc [d_sae]}, {@code bDec [d_in]}; {@code threshold} is {@code [d_sae]} or a scalar {@code [1]};
 * Gated SAEs carry {@code bGate}, {@code rMag}, {@code bMag} {@code [d_sae]} and no {@code bEnc}.
 * The constructor checks every shape against the config.
 */
public final class SingleSae implements Sae {
    private final SaeConfig config;
    private final Weight wEnc;
    private final Optional<Weight> bEnc;
    private final Weight wDec;
    private final Weight bDec;
    private final Optional<Weight> threshold;
    private final Optional<Weight> bGate;
    private final Optional<Weight> rMag;
    private final Optional<Weight> bMag;
    private final Optional<float[]> baselineDensity;

    public SingleSae(SaeConfig config, Weight wEnc, Optional<Weight> bEnc, Weight wDec, Weight bDec,
            Optional<Weight> threshold, Optional<Weight> bGate, Optional<Weight> rMag, Optional<Weight> bMag,
            Optional<float[]> baselineDensity) throws SaeFormatException {
        this.config = Objects.requireNonNull(config, "config");
        long d = config.dIn();
        long f = config.dSae();
        this.wEnc = check(wEnc, d, f);
        this.bEnc = checkVector(bEnc, f);
        this.wDec = check(wDec, f, d);
        this.bDec = check(bDec, d);
        this.threshold = threshold;
        if (threshold.isPresent() && threshold.get().elementCount() != f && threshold.get().elementCount() != 1) {
            throw new SaeFormatException(threshold.get().source() + ": threshold must have shape [" + f
                    + "] or be a scalar, found " + Arrays.toString(threshold.get().shape()));
        }
        this.bGate = checkVector(bGate, f);
        this.rMag = checkVector(rMag, f);
        this.bMag = checkVector(bMag, f);
        this.baselineDensity = baselineDensity;
        if (baselineDensity.isPresent() && baselineDensity.get().length != f) {
            throw new SaeFormatException("baseline density has " + baselineDensity.get().length + " entries, expected " + f);
        }
        Architecture a = config.architecture();
        if ((a == Architecture.JUMPRELU || a == Architecture.BATCHTOPK) && threshold.isEmpty()) {
            throw new SaeFormatException(config.path() + ": a " + a.wireName() + " SAE needs a 'threshold' tensor");
        }
        if (a == Architecture.GATED && (this.bGate.isEmpty() || this.rMag.isEmpty() || this.bMag.isEmpty())) {
            throw new SaeFormatException(config.path() + ": a gated SAE needs b_gate, r_mag and b_mag");
        }
        if (a != Architecture.GATED && this.bEnc.isEmpty()) {
            throw new SaeFormatException(config.path() + ": a " + a.wireName() + " SAE needs b_enc");
        }
        if ((a == Architecture.TOPK || a == Architecture.ABSTOPK) && config.k().isEmpty()) {
            throw new SaeFormatException(config.path() + ": a " + a.wireName() + " SAE needs k");
        }
        if (a == Architecture.COMPOSED) {
            throw new SaeFormatException(config.path() + ": a single SAE cannot be 'composed'");
        }
    }

    private static Weight check(Weight w, long... expected) throws SaeFormatException {
        if (!Arrays.equals(w.shape(), expected)) {
            throw new SaeFormatException(w.source() + ": expected shape " + Arrays.toString(expected) + ", found "
                    + Arrays.toString(w.shape()));
        }
        return w;
    }

    private static Optional<Weight> checkVector(Optional<Weight> w, long n) throws SaeFormatException {
        if (w.isPresent()) {
            check(w.get(), n);
        }
        return w;
    }

    @Override
    public SaeConfig config() {
        return config;
    }

    public Weight wEnc() {
        return wEnc;
    }

    public Optional<Weight> bEnc() {
        return bEnc;
    }

    public Weight wDec() {
        return wDec;
    }

    public Weight bDec() {
        return bDec;
    }

    public Optional<Weight> threshold() {
        return threshold;
    }

    public Optional<Weight> bGate() {
        return bGate;
    }

    public Optional<Weight> rMag() {
        return rMag;
    }

    public Optional<Weight> bMag() {
        return bMag;
    }

    @Override
    public Optional<float[]> baselineDensity() {
        return baselineDensity.map(float[]::clone);
    }

    @Override
    public void decoderRow(int f, float[] dst) {
        wDec.row(f, dst);
    }

    @Override
    public String toString() {
        return "SingleSae[" + config.format().wireName() + ", " + config.architecture().wireName() + ", d_in="
                + config.dIn() + ", d_sae=" + config.dSae() + ", " + config.path() + "]";
    }
}
