package io.saeguard.detectors;

import io.saeguard.detectors.spi.FeatureTally;

/**
 * The engine's {@link FeatureTally}: the {@code capacity} strongest features of one chunk, each with
 * its strongest observation. Fixed arrays, no allocation; an observation weaker than every kept one
 * when full is rejected in O(1).
 */
final class TopFeatures implements FeatureTally {
    private final int[] feature;
    private final float[] value;
    private final double[] strength;
    private final int[] order;
    private int size;
    private int weakest;

    TopFeatures(int capacity) {
        feature = new int[capacity];
        value = new float[capacity];
        strength = new double[capacity];
        order = new int[capacity];
    }

    void clear() {
        size = 0;
        weakest = 0;
    }

    int size() {
        return size;
    }

    @Override
    public void observe(int f, float v, double s) {
        if (size == feature.length && s <= strength[weakest]) {
            return;
        }
        for (int i = 0; i < size; i++) {
            if (feature[i] == f) {
                if (s > strength[i]) {
                    strength[i] = s;
                    value[i] = v;
                    if (i == weakest) {
                        findWeakest();
                    }
                }
                return;
            }
        }
        int at;
        if (size < feature.length) {
            at = size++;
        } else {
            at = weakest;
        }
        feature[at] = f;
        value[at] = v;
        strength[at] = s;
        if (size == feature.length) {
            findWeakest();
        }
    }

    private void findWeakest() {
        int w = 0;
        for (int i = 1; i < size; i++) {
            if (strength[i] < strength[w]) {
                w = i;
            }
        }
        weakest = w;
    }

    /** Sorts the kept entries by strength, strongest first (ties: lower feature id first); returns how many. */
    int sort() {
        for (int i = 0; i < size; i++) {
            order[i] = i;
        }
        for (int i = 1; i < size; i++) {
            int x = order[i];
            int j = i - 1;
            while (j >= 0 && stronger(x, order[j])) {
                order[j + 1] = order[j];
                j--;
            }
            order[j + 1] = x;
        }
        return size;
    }

    private boolean stronger(int a, int b) {
        return strength[a] > strength[b] || (strength[a] == strength[b] && feature[a] < feature[b]);
    }

    /** After {@link #sort()}: the feature ranked {@code rank}. */
    int featureAt(int rank) {
        return feature[order[rank]];
    }

    /** After {@link #sort()}: the activation of the feature ranked {@code rank}. */
    float valueAt(int rank) {
        return value[order[rank]];
    }

    /** After {@link #sort()}: the strength of the feature ranked {@code rank}. */
    double strengthAt(int rank) {
        return strength[order[rank]];
    }
}
