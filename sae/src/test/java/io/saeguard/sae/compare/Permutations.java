package io.saeguard.sae.compare;

import java.util.Random;

/** Random permutations for SAE-comparison tests (a permuted copy of an SAE must match feature for feature). */
public final class Permutations {
    private Permutations() {
    }

    /** A uniformly random permutation of {@code 0..n-1} (Fisher–Yates). */
    public static int[] random(Random rnd, int n) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = i;
        }
        for (int i = n - 1; i > 0; i--) {
            int j = rnd.nextInt(i + 1);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }
}
