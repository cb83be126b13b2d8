package io.saeguard.detectors.select;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Objects;
import java.util.Random;

/**
 * Which labelled examples each step of {@link TextSelection} may use (docs/algorithms.md#text-selection): positives
 * are split into fit and test, negatives into fit, calibration and test. Rules are fitted (features chosen, probes
 * trained, τ set) on the fit parts only; policy thresholds are calibrated on the calibration negatives only; the
 * test parts are scored once, by every rule and baseline, and tune nothing.
 *
 * @param positiveFit         positive example indices to fit on
 * @param positiveTest        held-out positive example indices
 * @param negativeFit         negative example indices to fit on
 * @param negativeCalibration negative example indices the policy threshold is calibrated on
 * @param negativeTest        held-out negative example indices
 * @param description         how the split was made, for the report
 */
public record TextSplit(int[] positiveFit, int[] positiveTest, int[] negativeFit, int[] negativeCalibration,
        int[] negativeTest, String description) {
    public TextSplit {
        Objects.requireNonNull(description, "description");
        for (int[] part : new int[][] {positiveFit, positiveTest, negativeFit, negativeCalibration, negativeTest}) {
            if (part.length == 0) {
                throw new IllegalArgumentException("every part of a split needs at least one example (" + description + "): "
                        + positiveFit.length + " positive fit, " + positiveTest.length + " positive test, " + negativeFit.length
                        + " negative fit, " + negativeCalibration.length + " negative calibration, " + negativeTest.length
                        + " negative test; add examples or lower --holdout / --calibration");
            }
        }
    }

    /**
     * A fixed, seeded held-out split: each class shuffled with {@code seed}, {@code holdout} of it held out; then
     * {@code calibration} of the remaining negatives set aside for calibration (shuffled with {@code seed + 1}).
     */
    public static TextSplit holdout(int positives, int negatives, double holdout, double calibration, long seed) {
        checkFraction("holdout", holdout);
        checkFraction("calibration", calibration);
        int[][] p = cut(shuffled(positives, seed), holdout);
        int[][] n = cut(shuffled(negatives, seed), holdout);
        int[][] nc = cut(shuffle(n[1], seed + 1), calibration);
        return new TextSplit(sorted(p[1]), sorted(p[0]), sorted(nc[1]), sorted(nc[0]), sorted(n[0]), String.format(
                java.util.Locale.ROOT, "held out %s of each class (seed %d); %s of the other negatives calibrate the policy",
                pct(holdout), seed, pct(calibration)));
    }

    /**
     * K folds: each class shuffled with {@code seed} and dealt round-robin into {@code k} folds; fold {@code i} is
     * held out in split {@code i}, the rest split as in {@link #holdout} into fit and calibration.
     */
    public static List<TextSplit> folds(int positives, int negatives, int k, double calibration, long seed) {
        if (k < 2) {
            throw new IllegalArgumentException("--folds must be at least 2, found " + k);
        }
        checkFraction("calibration", calibration);
        int[] p = shuffled(positives, seed);
        int[] n = shuffled(negatives, seed);
        List<TextSplit> out = new ArrayList<>();
        for (int fold = 0; fold < k; fold++) {
            int[][] pp = fold(p, k, fold);
            int[][] nn = fold(n, k, fold);
            int[][] nc = cut(shuffle(nn[1], seed + 1), calibration);
            out.add(new TextSplit(sorted(pp[1]), sorted(pp[0]), sorted(nc[1]), sorted(nc[0]), sorted(nn[0]), String.format(
                    java.util.Locale.ROOT, "fold %d of %d (seed %d); %s of the other negatives calibrate the policy", fold + 1, k,
                    seed, pct(calibration))));
        }
        return out;
    }

    /**
     * Leave-one-group-out folds ({@code saeguard select --folds-by group}): one fold per distinct group (in sorted
     * order), holding out every example of that group and fitting on the others, so a choice made on them is made
     * across groups (e.g. across the system prompts of the training models, as the test is across models); the fit
     * negatives split as in {@link #holdout} into fit and calibration.
     *
     * @param positiveGroups per positive example, its group
     * @param negativeGroups per negative example, its group
     * @throws IllegalArgumentException with fewer than 2 groups, or a group without positives or negatives
     */
    public static List<TextSplit> byGroup(String[] positiveGroups, String[] negativeGroups, double calibration, long seed) {
        checkFraction("calibration", calibration);
        java.util.SortedSet<String> groups = new java.util.TreeSet<>(Arrays.asList(positiveGroups));
        groups.addAll(Arrays.asList(negativeGroups));
        if (groups.size() < 2) {
            throw new IllegalArgumentException("--folds-by group needs at least 2 distinct values of the 'group' field, found "
                    + groups + "; add a group to each line or use --folds K");
        }
        List<TextSplit> out = new ArrayList<>();
        int fold = 0;
        for (String g : groups) {
            boolean[] p = new boolean[positiveGroups.length];
            boolean[] n = new boolean[negativeGroups.length];
            for (int i = 0; i < p.length; i++) {
                p[i] = positiveGroups[i].equals(g);
            }
            for (int i = 0; i < n.length; i++) {
                n[i] = negativeGroups[i].equals(g);
            }
            int[][] pp = byFlag(p);
            int[][] nn = byFlag(n);
            if (pp[0].length == 0 || nn[0].length == 0) {
                throw new IllegalArgumentException("--folds-by group: group '" + g + "' has " + pp[0].length + " positive and "
                        + nn[0].length + " negative examples; every group needs both (leave-one-group-out scores each group "
                        + "as a fold): merge it into another group or use --folds K");
            }
            int[][] nc = cut(shuffle(nn[1], seed + 1), calibration);
            out.add(new TextSplit(pp[1], pp[0], sorted(nc[1]), sorted(nc[0]), nn[0], String.format(java.util.Locale.ROOT,
                    "fold %d of %d: group '%s' held out (leave-one-group-out); %s of the other negatives calibrate the policy",
                    ++fold, groups.size(), g, pct(calibration))));
        }
        return out;
    }

    /**
     * This split over a subset: each index {@code i} of a positive part becomes {@code positives[i]}, of a negative
     * part {@code negatives[i]} (e.g. folds made over the training examples alone, named in the whole set's indices).
     */
    public TextSplit within(int[] positives, int[] negatives, String what) {
        return new TextSplit(map(positiveFit, positives), map(positiveTest, positives), map(negativeFit, negatives),
                map(negativeCalibration, negatives), map(negativeTest, negatives), description + " " + what);
    }

    /** The examples this split does not hold out: {@code [positives, negatives]}, each sorted. */
    public int[][] training() {
        int[] n = Arrays.copyOf(negativeFit, negativeFit.length + negativeCalibration.length);
        System.arraycopy(negativeCalibration, 0, n, negativeFit.length, negativeCalibration.length);
        return new int[][] {sorted(positiveFit), sorted(n)};
    }

    private static int[] map(int[] part, int[] to) {
        int[] out = new int[part.length];
        for (int i = 0; i < part.length; i++) {
            out[i] = to[part[i]];
        }
        Arrays.sort(out);
        return out;
    }

    /**
     * A split given by the data: the test examples are named (e.g. another model's completions), the rest are fit
     * on, with {@code calibration} of the non-test negatives set aside for calibration.
     */
    public static TextSplit given(boolean[] positiveIsTest, boolean[] negativeIsTest, double calibration, long seed, String what) {
        checkFraction("calibration", calibration);
        int[][] p = byFlag(positiveIsTest);
        int[][] n = byFlag(negativeIsTest);
        int[][] nc = cut(shuffle(n[1], seed + 1), calibration);
        return new TextSplit(p[1], p[0], sorted(nc[1]), sorted(nc[0]), n[0], String.format(java.util.Locale.ROOT,
                "%s held out; %s of the other negatives calibrate the policy (seed %d)", what, pct(calibration), seed));
    }

    private static int[][] byFlag(boolean[] test) {
        int[] t = new int[test.length];
        int[] f = new int[test.length];
        int nt = 0;
        int nf = 0;
        for (int i = 0; i < test.length; i++) {
            if (test[i]) {
                t[nt++] = i;
            } else {
                f[nf++] = i;
            }
        }
        return new int[][] {Arrays.copyOf(t, nt), Arrays.copyOf(f, nf)};
    }

    private static void checkFraction(String what, double f) {
        if (!(f > 0 && f < 1)) {
            throw new IllegalArgumentException("--" + what + " must be in (0, 1), found " + f);
        }
    }

    private static int[] shuffled(int n, long seed) {
        int[] all = new int[n];
        for (int i = 0; i < n; i++) {
            all[i] = i;
        }
        return shuffle(all, seed);
    }

    private static int[] shuffle(int[] items, long seed) {
        List<Integer> order = new ArrayList<>();
        for (int i : items) {
            order.add(i);
        }
        Collections.shuffle(order, new Random(seed));
        return order.stream().mapToInt(Integer::intValue).toArray();
    }

    /** [first round(fraction · n) (at least 1, at most n − 1 when n ≥ 2), the rest]. */
    private static int[][] cut(int[] items, double fraction) {
        int n = items.length;
        int first = n < 2 ? 0 : (int) Math.min(n - 1, Math.max(1, Math.round(fraction * n)));
        return new int[][] {Arrays.copyOfRange(items, 0, first), Arrays.copyOfRange(items, first, n)};
    }

    private static int[][] fold(int[] items, int k, int fold) {
        int[] in = new int[items.length];
        int[] out = new int[items.length];
        int a = 0;
        int b = 0;
        for (int i = 0; i < items.length; i++) {
            if (i % k == fold) {
                in[a++] = items[i];
            } else {
                out[b++] = items[i];
            }
        }
        return new int[][] {Arrays.copyOf(in, a), Arrays.copyOf(out, b)};
    }

    private static int[] sorted(int[] a) {
        int[] c = a.clone();
        Arrays.sort(c);
        return c;
    }

    private static String pct(double f) {
        return String.format(java.util.Locale.ROOT, "%.0f %%", 100 * f);
    }
}
