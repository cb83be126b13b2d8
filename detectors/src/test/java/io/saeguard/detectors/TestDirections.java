package io.saeguard.detectors;

import java.util.HashMap;
import java.util.Map;

/** Decoder directions from in-memory {@code W_dec} matrices; feature f's row is {@code rows[f]}. */
final class TestDirections implements DecoderDirections {
    private final Map<String, float[][]> decoders = new HashMap<>();

    TestDirections with(String sae, float[][] wDec) {
        decoders.put(sae, wDec);
        return this;
    }

    /** A decoder whose row f is {@code (f + 1) · e_(f mod dIn)} plus 1 in the last coordinate, so rows differ and are not unit. */
    static TestDirections simple(String sae, int dSae, int dIn) {
        float[][] w = new float[dSae][dIn];
        for (int f = 0; f < dSae; f++) {
            w[f][f % dIn] = f + 1;
            w[f][dIn - 1] += 1;
        }
        return new TestDirections().with(sae, w);
    }

    @Override
    public int dIn(String sae) {
        float[][] w = decoders.get(sae);
        if (w == null) {
            throw new IllegalArgumentException("SAE '" + sae + "' not loaded");
        }
        return w[0].length;
    }

    @Override
    public void direction(String sae, int feature, float[] dst) {
        float[][] w = decoders.get(sae);
        if (w == null) {
            throw new IllegalArgumentException("SAE '" + sae + "' not loaded");
        }
        if (feature < 0 || feature >= w.length) {
            throw new IllegalArgumentException("feature " + feature + " outside [0, " + w.length + ")");
        }
        System.arraycopy(w[feature], 0, dst, 0, dst.length);
    }
}
