package io.saeguard.bench;

/**
 * An encoder's size, written {@code d_in x d_sae} (e.g. {@code 2304x16384}, Gemma Scope 2B width 16k).
 *
 * @param dIn input width
 * @param dSae dictionary size
 */
public record SaeShape(int dIn, int dSae) {
    public SaeShape {
        if (dIn < 1 || dSae < 1) {
            throw new IllegalArgumentException("d_in and d_sae must be positive, got " + dIn + "x" + dSae);
        }
    }

    /** Parses {@code 768x24576}. */
    public static SaeShape parse(String text) {
        String[] parts = text.trim().split("x");
        if (parts.length != 2) {
            throw new IllegalArgumentException("shape must be d_inxd_sae, e.g. 768x24576, found '" + text + "'");
        }
        return new SaeShape(Integer.parseInt(parts[0]), Integer.parseInt(parts[1]));
    }

    /** Floating-point operations of the encoder GEMM for {@code tokens} rows: 2·n·d_in·d_sae. */
    public double gemmFlops(int tokens) {
        return 2.0 * tokens * dIn * dSae;
    }

    @Override
    public String toString() {
        return dIn + "x" + dSae;
    }
}
