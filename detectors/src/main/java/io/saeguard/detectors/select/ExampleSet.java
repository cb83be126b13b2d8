package io.saeguard.detectors.select;

import io.saeguard.topics.codes.SparseCodes;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * One labelled set for feature selection: the SAE codes of its tokens, optionally which example
 * (request, document) each token belongs to, and optionally the raw activations (needed for the
 * raw-probe baseline). Inputs should not contain BOS tokens (or set
 * {@link SelectionOptions#skipFirstToken()}).
 *
 * @param codes       the tokens' codes
 * @param examples    per token, an example id; tokens of one example keep their order. Absent: every
 *                    token is its own example (then the dsg rule, which needs a rate per example, is unavailable)
 * @param activations row-major {@code [tokens, dIn]} raw activations
 * @param dIn         activation width ({@code 0} without activations)
 */
public record ExampleSet(SparseCodes codes, Optional<int[]> examples, Optional<float[]> activations, int dIn) {
    public ExampleSet {
        Objects.requireNonNull(codes, "codes");
        Objects.requireNonNull(examples, "examples");
        Objects.requireNonNull(activations, "activations");
        if (examples.isPresent() && examples.get().length != codes.tokens()) {
            throw new IllegalArgumentException("examples has " + examples.get().length + " entries for " + codes.tokens() + " tokens");
        }
        if (activations.isPresent() && (dIn <= 0 || activations.get().length != (long) codes.tokens() * dIn)) {
            throw new IllegalArgumentException("activations must hold tokens x dIn = " + codes.tokens() + " x " + dIn + " floats");
        }
    }

    /** Codes only, every token its own example. */
    public static ExampleSet ofTokens(SparseCodes codes) {
        return new ExampleSet(codes, Optional.empty(), Optional.empty(), 0);
    }

    /** Codes grouped into examples. */
    public static ExampleSet ofExamples(SparseCodes codes, int[] examples) {
        return new ExampleSet(codes, Optional.of(examples), Optional.empty(), 0);
    }

    /** A copy with raw activations. */
    public ExampleSet withActivations(float[] x, int width) {
        return new ExampleSet(codes, examples, Optional.of(x), width);
    }

    /** The token indices of each example, examples in order of first appearance. */
    List<int[]> groups() {
        int n = codes.tokens();
        if (examples.isEmpty()) {
            List<int[]> out = new ArrayList<>(n);
            for (int t = 0; t < n; t++) {
                out.add(new int[] {t});
            }
            return out;
        }
        Map<Integer, List<Integer>> byId = new LinkedHashMap<>();
        int[] ids = examples.get();
        for (int t = 0; t < n; t++) {
            byId.computeIfAbsent(ids[t], k -> new ArrayList<>()).add(t);
        }
        List<int[]> out = new ArrayList<>(byId.size());
        for (List<Integer> g : byId.values()) {
            out.add(g.stream().mapToInt(Integer::intValue).toArray());
        }
        return out;
    }
}
