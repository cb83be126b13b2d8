package io.saeguard.sae.train;

import io.saeguard.topics.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Random;

/**
 * Synthetic activations with a known sparse structure: a fixed offset plus a few atoms of a known
 * dictionary of random unit vectors, with coefficients in [0.5, 1.5]. A TopK SAE with k equal to the
 * number of active atoms can recover the dictionary, so its FVU shows whether training works. Atoms
 * are grouped: a "domain" draws its atoms from chosen ranges, so a shifted domain uses atoms the
 * base domain never showed.
 */
public final class SparseDictionaryData {
    /** Draw {@code count} distinct atoms per row from atoms {@code [from, to)}. */
    public record Mix(int from, int to, int count) {
    }

    private final int dIn;
    private final int atoms;
    private final float[] dictionary; // [atoms, d_in], unit rows
    private final float[] offset;     // [d_in]

    public SparseDictionaryData(int dIn, int atoms, long seed) {
        this.dIn = dIn;
        this.atoms = atoms;
        Random r = new Random(seed);
        this.dictionary = new float[atoms * dIn];
        for (int a = 0; a < atoms; a++) {
            double norm = 0;
            for (int j = 0; j < dIn; j++) {
                float v = (float) r.nextGaussian();
                dictionary[a * dIn + j] = v;
                norm += v * v;
            }
            for (int j = 0; j < dIn; j++) {
                dictionary[a * dIn + j] /= (float) Math.sqrt(norm);
            }
        }
        this.offset = new float[dIn];
        for (int j = 0; j < dIn; j++) {
            offset[j] = (float) (0.5 * r.nextGaussian());
        }
    }

    public int dIn() {
        return dIn;
    }

    public int atoms() {
        return atoms;
    }

    /** {@code n} rows {@code [n, d_in]}; each row takes {@code count} distinct atoms from every mix. */
    public float[] rows(int n, long seed, Mix... mixes) {
        Random r = new Random(seed);
        float[] x = new float[n * dIn];
        for (int i = 0; i < n; i++) {
            System.arraycopy(offset, 0, x, i * dIn, dIn);
            for (Mix m : mixes) {
                int[] picked = distinct(r, m.from(), m.to(), m.count());
                for (int a : picked) {
                    float c = 0.5f + r.nextFloat();
                    for (int j = 0; j < dIn; j++) {
                        x[i * dIn + j] += c * dictionary[a * dIn + j];
                    }
                }
            }
        }
        return x;
    }

    private static int[] distinct(Random r, int from, int to, int count) {
        int[] out = new int[count];
        int n = 0;
        while (n < count) {
            int a = from + r.nextInt(to - from);
            boolean seen = false;
            for (int i = 0; i < n; i++) {
                seen |= out[i] == a;
            }
            if (!seen) {
                out[n++] = a;
            }
        }
        return out;
    }

    /** Writes rows as an activation file: tensor {@code activations [n, d_in]} F32. */
    public static Path write(Path file, float[] rows, int dIn) throws IOException {
        new SafetensorsWriter().addF32(SafetensorsActivationSource.TENSOR, new long[] {rows.length / dIn, dIn}, rows).writeTo(file);
        return file;
    }
}
