package io.saeguard.detectors.organism;

import io.saeguard.detectors.Chunk;
import io.saeguard.detectors.DecoderDirections;
import io.saeguard.detectors.select.ExampleSet;
import io.saeguard.topics.codes.SparseCodes;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Random;

/**
 * A model organism with known answers (issue 5, "Proof on a model organism"): activations are sparse
 * combinations of known unit dictionary directions plus Gaussian noise, and an SAE whose decoder holds
 * exactly those directions encodes them with a plain ReLU encoder, {@code a = ReLU(x · Dᵀ − b)}.
 *
 * <ul>
 *   <li>The dictionary: {@value #D_SAE} random unit directions in R^{@value #D_IN}; the planted ones
 *       ({@link #CONCEPT}, {@link #GENERIC}) are orthogonalised against each other.</li>
 *   <li>Every token: {@value #BENIGN_PER_TOKEN} benign features (ids outside {@link #CONCEPT} and
 *       {@link #GENERIC}) with coefficients in [1.5, 3), plus noise N(0, {@value #NOISE}²) per dimension.</li>
 *   <li>Planted (positive) requests: each token also carries one of the {@link #CONCEPT} directions
 *       with probability {@value #CONCEPT_RATE}, coefficient in [2.5, 4).</li>
 *   <li>A generic "text-ness" feature {@link #GENERIC} fires on {@value #GENERIC_POSITIVE_RATE} of
 *       positive and random tokens but only {@value #GENERIC_NEGATIVE_RATE} of negative ones: a feature
 *       the DSG ranking likes and LangFIR (§6) must remove.</li>
 *   <li>Optionally a BOS token at position 0: an attention sink of norm ~{@value #BOS_SCALE} along the
 *       first concept direction, which would fire the detector if special tokens counted.</li>
 * </ul>
 */
final class Organism {
    static final String SAE = "organism-res-192";
    static final int D_IN = 128;
    static final int D_SAE = 192;
    static final float BIAS = 1.0f;
    static final int[] CONCEPT = {17, 101, 150};
    static final int GENERIC = 7;
    static final int BENIGN_PER_TOKEN = 3;
    static final double NOISE = 0.05;
    static final double CONCEPT_RATE = 0.35;
    static final double GENERIC_POSITIVE_RATE = 0.4;
    static final double GENERIC_NEGATIVE_RATE = 0.03;
    static final float BOS_SCALE = 30f;

    /** The dictionary: row f is feature f's unit decoder direction, {@code [D_SAE, D_IN]}. */
    final float[][] dictionary = new float[D_SAE][D_IN];
    private final Random rnd;
    private final int[] benign;

    /**
     * One request's tokens.
     *
     * @param x       activations {@code [tokens, D_IN]}
     * @param codes   dense SAE codes {@code [tokens, D_SAE]}
     * @param concept per token, whether a concept direction was planted in it (the token-level truth
     *                the probes are trained on; false for a BOS sink)
     * @param planted whether concept directions were planted
     * @param bos     whether token 0 is a BOS sink
     */
    record Request(float[][] x, float[][] codes, boolean[] concept, boolean planted, boolean bos) {
        int tokens() {
            return x.length;
        }
    }

    /** One generated token: its activation and whether a concept direction is in it. */
    private record Token(float[] x, boolean concept) {}

    Organism(long seed) {
        rnd = new Random(seed);
        for (float[] row : dictionary) {
            double norm = 0;
            for (int i = 0; i < D_IN; i++) {
                row[i] = (float) rnd.nextGaussian();
                norm += row[i] * row[i];
            }
            norm = Math.sqrt(norm);
            for (int i = 0; i < D_IN; i++) {
                row[i] /= (float) norm;
            }
        }
        // The planted directions (concepts and the generic feature) are made mutually orthogonal, so a
        // concept never fires through the generic feature; benign directions stay random (interference).
        int[] planted = {GENERIC, CONCEPT[0], CONCEPT[1], CONCEPT[2]};
        for (int a = 0; a < planted.length; a++) {
            float[] v = dictionary[planted[a]];
            for (int b = 0; b < a; b++) {
                float[] u = dictionary[planted[b]];
                double dot = 0;
                for (int i = 0; i < D_IN; i++) {
                    dot += v[i] * (double) u[i];
                }
                for (int i = 0; i < D_IN; i++) {
                    v[i] -= (float) (dot * u[i]);
                }
            }
            float n = norm(v);
            for (int i = 0; i < D_IN; i++) {
                v[i] /= n;
            }
        }
        List<Integer> b = new ArrayList<>();
        for (int f = 0; f < D_SAE; f++) {
            if (f != GENERIC && f != CONCEPT[0] && f != CONCEPT[1] && f != CONCEPT[2]) {
                b.add(f);
            }
        }
        benign = b.stream().mapToInt(Integer::intValue).toArray();
    }

    /** A request of {@code tokens} tokens (plus a BOS when asked). */
    Request request(int tokens, boolean planted, boolean bos) {
        int n = tokens + (bos ? 1 : 0);
        float[][] x = new float[n][];
        boolean[] concept = new boolean[n];
        int t = 0;
        if (bos) {
            x[t++] = scaled(dictionary[CONCEPT[0]], BOS_SCALE);
        }
        for (; t < n; t++) {
            Token token = token(planted ? CONCEPT_RATE : 0, planted ? GENERIC_POSITIVE_RATE : GENERIC_NEGATIVE_RATE);
            x[t] = token.x();
            concept[t] = token.concept();
        }
        return new Request(x, encode(x), concept, planted, bos);
    }

    /** Random-token sequences (the LangFIR reference set): no concept, generic as often as in positives. */
    Request randomTokens(int tokens) {
        float[][] x = new float[tokens][];
        for (int t = 0; t < tokens; t++) {
            x[t] = token(0, GENERIC_POSITIVE_RATE).x();
        }
        return new Request(x, encode(x), new boolean[tokens], false, false);
    }

    /**
     * The padding attack: innocuous filler tokens, then the request's tokens (BOS kept in front). The
     * attacker's filler is text on which no concept feature fires (as the DSG replication found, filler
     * from the same topic fires the same features and does not dilute, docs/algorithms.md#windowed-dsg).
     */
    Request padded(Request request, int filler) {
        float[][] fillerX = new float[filler][];
        for (int t = 0; t < filler; t++) {
            float[] x;
            do {
                x = token(0, GENERIC_NEGATIVE_RATE).x();
            } while (firesConcept(x));
            fillerX[t] = x;
        }
        int offset = request.bos() ? 1 : 0;
        float[][] x = new float[filler + request.tokens()][];
        boolean[] concept = new boolean[x.length];
        int t = 0;
        if (request.bos()) {
            x[t++] = request.x()[0];
        }
        for (float[] row : fillerX) {
            x[t++] = row;
        }
        for (int i = offset; i < request.tokens(); i++) {
            concept[t] = request.concept()[i];
            x[t++] = request.x()[i];
        }
        return new Request(x, encode(x), concept, request.planted(), request.bos());
    }

    private boolean firesConcept(float[] x) {
        float[] a = encode(new float[][] {x})[0];
        for (int f : CONCEPT) {
            if (a[f] > 0) {
                return true;
            }
        }
        return false;
    }

    private Token token(double conceptRate, double genericRate) {
        double[] x = new double[D_IN];
        for (int k = 0; k < BENIGN_PER_TOKEN; k++) {
            add(x, benign[rnd.nextInt(benign.length)], 1.5 + 1.5 * rnd.nextDouble());
        }
        boolean concept = rnd.nextDouble() < conceptRate;
        if (concept) {
            add(x, CONCEPT[rnd.nextInt(CONCEPT.length)], 2.5 + 1.5 * rnd.nextDouble());
        }
        if (rnd.nextDouble() < genericRate) {
            add(x, GENERIC, 1.5 + 1.5 * rnd.nextDouble());
        }
        float[] out = new float[D_IN];
        for (int i = 0; i < D_IN; i++) {
            out[i] = (float) (x[i] + NOISE * rnd.nextGaussian());
        }
        return new Token(out, concept);
    }

    private void add(double[] x, int feature, double c) {
        for (int i = 0; i < D_IN; i++) {
            x[i] += c * dictionary[feature][i];
        }
    }

    private static float[] scaled(float[] v, float s) {
        float[] out = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = v[i] * s;
        }
        return out;
    }

    /** The SAE: {@code a = ReLU(x · Dᵀ − b)}, x: [tokens, D_IN], D: [D_SAE, D_IN]. */
    float[][] encode(float[][] x) {
        float[][] a = new float[x.length][D_SAE];
        for (int t = 0; t < x.length; t++) {
            for (int f = 0; f < D_SAE; f++) {
                double z = -BIAS;
                for (int i = 0; i < D_IN; i++) {
                    z += x[t][i] * (double) dictionary[f][i];
                }
                a[t][f] = z > 0 ? (float) z : 0f;
            }
        }
        return a;
    }

    static float norm(float[] x) {
        double s = 0;
        for (float v : x) {
            s += v * (double) v;
        }
        return (float) Math.sqrt(s);
    }

    /** CSR codes of rows [from, to) of dense codes. */
    static SparseCodes codes(float[][] dense, int from, int to) {
        int n = to - from;
        int[] rowStart = new int[n + 1];
        List<Integer> idx = new ArrayList<>();
        List<Float> val = new ArrayList<>();
        for (int t = 0; t < n; t++) {
            rowStart[t] = idx.size();
            float[] row = dense[from + t];
            for (int f = 0; f < row.length; f++) {
                if (row[f] != 0f) {
                    idx.add(f);
                    val.add(row[f]);
                }
            }
        }
        rowStart[n] = idx.size();
        float[] v = new float[val.size()];
        for (int i = 0; i < v.length; i++) {
            v[i] = val.get(i);
        }
        return SparseCodes.ofCsr(SAE, D_SAE, rowStart, idx.stream().mapToInt(Integer::intValue).toArray(), v);
    }

    /** The request as chunks of at most {@code size} tokens, as a producer would publish them (position 0 first). */
    static List<Chunk> chunks(String requestId, Request r, int size) {
        return chunks(requestId, r, size, false);
    }

    /**
     * The request as chunks of at most {@code size} tokens; with {@code activations}, each chunk also
     * carries its raw activations {@code [tokens, D_IN]} row-major, as the sidecar ships them to a raw probe.
     */
    static List<Chunk> chunks(String requestId, Request r, int size, boolean activations) {
        List<Chunk> out = new ArrayList<>();
        for (int from = 0; from < r.tokens(); from += size) {
            int to = Math.min(r.tokens(), from + size);
            float[] norms = new float[to - from];
            float[] x = activations ? new float[(to - from) * D_IN] : null;
            for (int t = from; t < to; t++) {
                norms[t - from] = norm(r.x()[t]);
                if (x != null) {
                    System.arraycopy(r.x()[t], 0, x, (t - from) * D_IN, D_IN);
                }
            }
            out.add(new Chunk(requestId, SAE, from, codes(r.codes(), from, to), Optional.ofNullable(x), D_IN, norms,
                    Optional.empty(), to == r.tokens()));
        }
        return out;
    }

    /** Requests as a selection input (no BOS tokens; the example id is the request's index). */
    static ExampleSet exampleSet(List<Request> requests) {
        int total = requests.stream().mapToInt(Request::tokens).sum();
        float[][] dense = new float[total][];
        float[] x = new float[total * D_IN];
        int[] examples = new int[total];
        int t = 0;
        for (int e = 0; e < requests.size(); e++) {
            Request r = requests.get(e);
            for (int i = 0; i < r.tokens(); i++) {
                dense[t] = r.codes()[i];
                System.arraycopy(r.x()[i], 0, x, t * D_IN, D_IN);
                examples[t++] = e;
            }
        }
        return ExampleSet.ofExamples(codes(dense, 0, total), examples).withActivations(x, D_IN);
    }

    /** The organism's SAE decoder, as the sidecar would provide it. */
    DecoderDirections directions() {
        return new DecoderDirections() {
            @Override
            public int dIn(String sae) {
                return D_IN;
            }

            @Override
            public void direction(String sae, int feature, float[] dst) {
                System.arraycopy(dictionary[feature], 0, dst, 0, D_IN);
            }
        };
    }
}
