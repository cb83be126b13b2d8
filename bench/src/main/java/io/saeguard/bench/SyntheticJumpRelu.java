package io.saeguard.bench;

import io.saeguard.sae.Architecture;
import io.saeguard.sae.Normalization;
import io.saeguard.sae.SaeConfig;
import io.saeguard.sae.SaeFormat;
import io.saeguard.sae.SaeFormatException;
import io.saeguard.sae.SingleSae;
import io.saeguard.sae.Weight;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

/**
 * Deterministic random parameters of a JumpReLU SAE, sized like real ones, for benchmarks.
 *
 * <p>Inputs are N(0, 1) per dimension and {@code W_enc} entries have variance {@code (s² / d_in)},
 * so a pre-activation {@code (x·W_enc)_f} is ≈ N(0, s²) whatever {@code d_in}. With {@code s = 0.12},
 * {@code b_enc ≈ -0.05} and {@code θ ≈ 0.2} a feature fires when the pre-activation exceeds ≈ 0.25 =
 * 2.1 s: ≈ 2 % of features per token, inside the 1–5 % the benchmark brief asks for (real SAEs are
 * sparser; the firing rate barely moves the GEMM-dominated cost).
 *
 * <p>Matrices are uniform rather than Gaussian (same variance; the pre-activation is a sum of
 * {@code d_in} terms and Gaussian anyway) and generated in independent 1 Mi-float chunks, so a
 * 4096×65536 matrix (1 GiB) fills in parallel straight into a direct buffer, and the streamed file
 * writer produces the same values without ever holding a matrix on the heap.
 */
final class SyntheticJumpRelu {
    /** Floats per independently seeded chunk of a matrix. */
    static final int CHUNK_FLOATS = 1 << 20;

    private static final float PRE_ACTIVATION_STD = 0.12f;
    private static final long ENCODER_STREAM = 0x5EA6_E4C0L;
    private static final long DECODER_STREAM = 0x5EA6_DEC0L;

    private final SaeShape shape;
    private final long seed;

    SyntheticJumpRelu(SaeShape shape, long seed) {
        this.shape = shape;
        this.seed = seed;
    }

    SaeShape shape() {
        return shape;
    }

    /** The SAE with every parameter in a freshly allocated direct buffer ({@code W_enc}, {@code W_dec}: 4·d_in·d_sae bytes each). */
    SingleSae inMemory() {
        long n = (long) shape.dIn() * shape.dSae();
        ByteBuffer wEnc = directFloats(n);
        ByteBuffer wDec = directFloats(n);
        fillParallel(wEnc.asFloatBuffer(), n, ENCODER_STREAM, encoderBound());
        fillParallel(wDec.asFloatBuffer(), n, DECODER_STREAM, decoderBound());
        try {
            return new SingleSae(config(), new Weight("synthetic:W_enc", new long[] {shape.dIn(), shape.dSae()}, false, wEnc),
                    Optional.of(Weight.ofVector("synthetic:b_enc", bEnc())),
                    new Weight("synthetic:W_dec", new long[] {shape.dSae(), shape.dIn()}, false, wDec),
                    Weight.ofVector("synthetic:b_dec", bDec()), Optional.of(Weight.ofVector("synthetic:threshold", threshold())),
                    Optional.empty(), Optional.empty(), Optional.empty(), Optional.empty());
        } catch (SaeFormatException e) {
            throw new IllegalStateException("synthetic SAE does not match its own config", e);
        }
    }

    private SaeConfig config() {
        return new SaeConfig(Path.of("synthetic-" + shape), SaeFormat.SAELENS, Architecture.JUMPRELU, shape.dIn(), shape.dSae(),
                OptionalInt.empty(), false, Normalization.NONE, 1.0, 1.0, false, "F32", Optional.empty(), Optional.empty(), List.of());
    }

    private static ByteBuffer directFloats(long n) {
        return ByteBuffer.allocateDirect(Math.toIntExact(n * 4)).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** W_enc entries are uniform in ±bound: variance bound²/3 = s²/d_in. */
    private float encoderBound() {
        return (float) (PRE_ACTIVATION_STD * Math.sqrt(3.0 / shape.dIn()));
    }

    /** W_dec rows of roughly unit norm, as SAELens trains them. */
    private float decoderBound() {
        return (float) Math.sqrt(3.0 / shape.dIn());
    }

    private void fillParallel(FloatBuffer dst, long n, long stream, float bound) {
        int chunks = Math.toIntExact((n + CHUNK_FLOATS - 1) / CHUNK_FLOATS);
        IntStream.range(0, chunks).parallel().forEach(c -> {
            float[] chunk = new float[(int) Math.min(CHUNK_FLOATS, n - (long) c * CHUNK_FLOATS)];
            fillChunk(chunk, c, stream, bound);
            dst.duplicate().position(c * CHUNK_FLOATS).put(chunk);
        });
    }

    /** Chunk {@code c} of W_enc (row-major [d_in, d_sae]). */
    void encoderChunk(int c, float[] dst) {
        fillChunk(dst, c, ENCODER_STREAM, encoderBound());
    }

    /** Chunk {@code c} of W_dec (row-major [d_sae, d_in]). */
    void decoderChunk(int c, float[] dst) {
        fillChunk(dst, c, DECODER_STREAM, decoderBound());
    }

    private void fillChunk(float[] dst, int c, long stream, float bound) {
        SplittableRandom rng = new SplittableRandom(seed ^ stream ^ (0x9E37_79B9_7F4A_7C15L * (c + 1)));
        float scale = bound * 0x1.0p-23f; // nextInt() >> 8 is uniform in [-2^23, 2^23)
        for (int i = 0; i < dst.length; i++) {
            dst[i] = (rng.nextInt() >> 8) * scale;
        }
    }

    float[] bEnc() {
        return uniform(shape.dSae(), 1, -0.06f, -0.04f);
    }

    float[] threshold() {
        return uniform(shape.dSae(), 2, 0.18f, 0.22f);
    }

    float[] bDec() {
        return uniform(shape.dIn(), 3, -0.01f, 0.01f);
    }

    private float[] uniform(int n, long stream, float lo, float hi) {
        SplittableRandom rng = new SplittableRandom(seed * 31 + stream);
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = lo + (hi - lo) * (float) rng.nextDouble();
        }
        return out;
    }

    /** A batch of activations, row-major {@code [tokens, d_in]}, N(0, 1). */
    float[] input(int tokens, long inputSeed) {
        SplittableRandom rng = new SplittableRandom(inputSeed);
        float[] x = new float[tokens * shape.dIn()];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rng.nextGaussian();
        }
        return x;
    }
}
