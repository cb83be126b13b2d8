package io.saeguard.topics.codes;

import io.saeguard.topics.DecodeException;
import io.saeguard.topics.DecodeException.Reason;
import io.saeguard.topics.safetensors.SafetensorsFile;
import io.saeguard.topics.safetensors.SafetensorsWriter;
import io.saeguard.topics.safetensors.Tensor;
import java.util.Arrays;
import java.util.Map;

/**
 * The SAE codes of a batch of tokens in compressed sparse row (CSR) form: for token {@code t}, the
 * active feature ids are {@code indices[rowStart[t] .. rowStart[t+1])} with the matching
 * {@code values}. Only active features are stored (a few hundred bytes per token), which is what
 * crosses from the SAE engine into the JVM heap and what detectors read.
 *
 * <p>Within a token, features are ordered by decreasing |value|. Immutable once built; the arrays
 * are owned by this object and never exposed for writing.
 */
public final class SparseCodes {
    private final String sae;
    private final int dSae;
    private final int[] rowStart;
    private final int[] indices;
    private final float[] values;
    private final int truncatedTokens;

    private SparseCodes(String sae, int dSae, int[] rowStart, int[] indices, float[] values, int truncatedTokens) {
        this.sae = sae;
        this.dSae = dSae;
        this.rowStart = rowStart;
        this.indices = indices;
        this.values = values;
        this.truncatedTokens = truncatedTokens;
    }

    /**
     * Builds codes from a padded top-k layout {@code [tokens, kmax]}: entries with value 0 are
     * inactive and dropped.
     *
     * @param truncatedTokens how many tokens had more active features than {@code kmax} (those
     *     tokens keep their {@code kmax} largest)
     */
    public static SparseCodes fromPadded(String sae, int dSae, int tokens, int kmax, int[] topIndices, float[] topValues,
            int truncatedTokens) {
        if (topIndices.length != tokens * kmax || topValues.length != tokens * kmax) {
            throw new IllegalArgumentException("expected " + tokens + " x " + kmax + " entries, got "
                    + topIndices.length + " indices and " + topValues.length + " values");
        }
        return compact(sae, dSae, tokens, kmax, kmax, topIndices, topValues, truncatedTokens);
    }

    /**
     * Builds codes straight from a top-k extraction's rows of {@code stride} entries per token, keeping the
     * first {@code kmax} of each (entries with value 0 are inactive and dropped). With {@code stride = kmax + 1}
     * the extra column tells truncation: a token had more than {@code kmax} active features iff its
     * {@code (kmax+1)}-th entry is non-zero. One pass less, and no padded copy, than {@link #fromPadded}
     * (the SAE engine's hot path: at 4096 tokens × 257 that copy was ~1M entries per batch).
     */
    public static SparseCodes fromTopK(String sae, int dSae, int tokens, int stride, int kmax, int[] topIndices, float[] topValues) {
        if (stride != kmax && stride != kmax + 1) {
            throw new IllegalArgumentException("stride must be kmax or kmax + 1, got " + stride + " for kmax " + kmax);
        }
        if (topIndices.length != tokens * stride || topValues.length != tokens * stride) {
            throw new IllegalArgumentException("expected " + tokens + " x " + stride + " entries, got "
                    + topIndices.length + " indices and " + topValues.length + " values");
        }
        int truncated = 0;
        if (stride > kmax) {
            for (int t = 0; t < tokens; t++) {
                if (topValues[t * stride + kmax] != 0f) {
                    truncated++;
                }
            }
        }
        return compact(sae, dSae, tokens, stride, kmax, topIndices, topValues, truncated);
    }

    private static SparseCodes compact(String sae, int dSae, int tokens, int stride, int kmax, int[] topIndices, float[] topValues,
            int truncatedTokens) {
        int nnz = 0;
        for (int t = 0; t < tokens; t++) {
            int base = t * stride;
            for (int j = 0; j < kmax; j++) {
                if (topValues[base + j] != 0f) {
                    nnz++;
                }
            }
        }
        int[] rowStart = new int[tokens + 1];
        int[] idx = new int[nnz];
        float[] val = new float[nnz];
        int p = 0;
        for (int t = 0; t < tokens; t++) {
            rowStart[t] = p;
            int base = t * stride;
            for (int j = 0; j < kmax; j++) {
                float v = topValues[base + j];
                if (v != 0f) {
                    idx[p] = topIndices[base + j];
                    val[p] = v;
                    p++;
                }
            }
        }
        rowStart[tokens] = p;
        return new SparseCodes(sae, dSae, rowStart, idx, val, truncatedTokens);
    }

    /**
     * Builds codes from the dense codes of a few features: {@code values} is row-major {@code [tokens, features.length]},
     * column {@code j} holding feature {@code features[j]}'s codes (the SAE engine's watched-feature encode). Zeros are
     * dropped; each token's entries are ordered by decreasing |value| (ties by feature id), as top-k read-back orders
     * them. Features not listed are absent, whatever their code.
     */
    public static SparseCodes fromColumns(String sae, int dSae, int tokens, int[] features, float[] values) {
        int w = features.length;
        if (values.length != tokens * w) {
            throw new IllegalArgumentException("expected " + tokens + " x " + w + " values, got " + values.length);
        }
        for (int f : features) {
            if (f < 0 || f >= dSae) {
                throw new IllegalArgumentException("feature id " + f + " outside [0, " + dSae + ")");
            }
        }
        int nnz = 0;
        for (float v : values) {
            if (v != 0f) {
                nnz++;
            }
        }
        int[] rowStart = new int[tokens + 1];
        int[] idx = new int[nnz];
        float[] val = new float[nnz];
        int p = 0;
        for (int t = 0; t < tokens; t++) {
            rowStart[t] = p;
            int start = p;
            for (int j = 0; j < w; j++) {
                float v = values[t * w + j];
                if (v == 0f) {
                    continue;
                }
                // insertion into the token's run, kept by decreasing |value| then increasing id (runs are a few entries)
                int at = p++;
                while (at > start && (Math.abs(val[at - 1]) < Math.abs(v)
                        || (Math.abs(val[at - 1]) == Math.abs(v) && idx[at - 1] > features[j]))) {
                    val[at] = val[at - 1];
                    idx[at] = idx[at - 1];
                    at--;
                }
                val[at] = v;
                idx[at] = features[j];
            }
        }
        rowStart[tokens] = p;
        return new SparseCodes(sae, dSae, rowStart, idx, val, 0);
    }

    /** Builds codes from CSR arrays (copied); used when decoding published codes. */
    public static SparseCodes ofCsr(String sae, int dSae, int[] rowStart, int[] indices, float[] values) {
        if (rowStart.length == 0 || rowStart[0] != 0 || rowStart[rowStart.length - 1] != indices.length
                || indices.length != values.length) {
            throw new IllegalArgumentException("inconsistent CSR arrays");
        }
        for (int t = 0; t + 1 < rowStart.length; t++) {
            if (rowStart[t + 1] < rowStart[t]) {
                throw new IllegalArgumentException("row starts must not decrease (token " + t + ")");
            }
        }
        for (int i : indices) {
            if (i < 0 || i >= dSae) {
                throw new IllegalArgumentException("feature id " + i + " outside [0, " + dSae + ")");
            }
        }
        return new SparseCodes(sae, dSae, rowStart.clone(), indices.clone(), values.clone(), 0);
    }

    /** Tokens {@code [from, from + count)} as their own codes (copied), e.g. one record's share of a batch. */
    public SparseCodes slice(int from, int count) {
        if (from < 0 || count < 0 || from + count > tokens()) {
            throw new IndexOutOfBoundsException("tokens [" + from + ", " + (from + count) + ") outside [0, " + tokens() + ")");
        }
        int start = rowStart[from];
        int end = rowStart[from + count];
        int[] rs = new int[count + 1];
        for (int t = 0; t <= count; t++) {
            rs[t] = rowStart[from + t] - start;
        }
        return new SparseCodes(sae, dSae, rs, Arrays.copyOfRange(indices, start, end), Arrays.copyOfRange(values, start, end), 0);
    }

    /** The SAE that produced these codes. */
    public String sae() {
        return sae;
    }

    /** Dictionary size of that SAE. */
    public int dSae() {
        return dSae;
    }

    public int tokens() {
        return rowStart.length - 1;
    }

    /** Number of active features of token {@code t} (its L0, after the {@code max_active} cap). */
    public int activeCount(int t) {
        return rowStart[t + 1] - rowStart[t];
    }

    /** Feature id of the {@code j}-th active feature of token {@code t}. */
    public int featureAt(int t, int j) {
        return indices[rowStart[t] + j];
    }

    /** Value of the {@code j}-th active feature of token {@code t}. */
    public float valueAt(int t, int j) {
        return values[rowStart[t] + j];
    }

    /** The value of feature {@code f} at token {@code t}, 0 when inactive (a linear scan of the token's few entries). */
    public float value(int t, int f) {
        for (int p = rowStart[t]; p < rowStart[t + 1]; p++) {
            if (indices[p] == f) {
                return values[p];
            }
        }
        return 0f;
    }

    /** Total active entries over all tokens. */
    public int nonZeros() {
        return indices.length;
    }

    /** Tokens whose active set was cut to {@code max_active}. */
    public int truncatedTokens() {
        return truncatedTokens;
    }

    /** All tokens' codes as one dense row-major {@code [tokens, dSae]} array. */
    public float[] toDense() {
        float[] out = new float[tokens() * dSae];
        for (int t = 0; t < tokens(); t++) {
            for (int p = rowStart[t]; p < rowStart[t + 1]; p++) {
                out[t * dSae + indices[p]] = values[p];
            }
        }
        return out;
    }

    /** The token's codes as a dense vector of length {@code dSae}. */
    public float[] denseRow(int t) {
        float[] out = new float[dSae];
        for (int p = rowStart[t]; p < rowStart[t + 1]; p++) {
            out[indices[p]] = values[p];
        }
        return out;
    }

    /**
     * Serialises to safetensors for replay and publishing: {@code row_start} I32 {@code [tokens+1]},
     * {@code indices} I32 {@code [nnz]}, {@code values} F32 {@code [nnz]}; metadata {@code sae},
     * {@code d_sae}, plus {@code extra}.
     */
    public byte[] toSafetensors(Map<String, String> extra) {
        return new SafetensorsWriter().metadata("sae", sae).metadata("d_sae", Integer.toString(dSae)).metadata(extra)
                .addI32("row_start", new long[] {rowStart.length}, rowStart)
                .addI32("indices", new long[] {indices.length}, indices)
                .addF32("values", new long[] {values.length}, values)
                .toBytes();
    }

    /** Reads what {@link #toSafetensors} wrote. */
    public static SparseCodes fromSafetensors(byte[] bytes) throws DecodeException {
        SafetensorsFile f = SafetensorsFile.parse(bytes);
        String sae = f.metadata().get("sae");
        String d = f.metadata().get("d_sae");
        if (sae == null || d == null) {
            throw new DecodeException(Reason.MISSING_FIELD, "sparse codes: __metadata__ needs 'sae' and 'd_sae'");
        }
        Tensor rs = require(f, "row_start");
        Tensor ix = require(f, "indices");
        Tensor vs = require(f, "values");
        try {
            return ofCsr(sae, Integer.parseInt(d), rs.toIntArray(), ix.toIntArray(), vs.toFloatArray());
        } catch (IllegalArgumentException | IllegalStateException e) {
            throw new DecodeException(Reason.INVALID_VALUE, "sparse codes: " + e.getMessage(), e);
        }
    }

    private static Tensor require(SafetensorsFile f, String name) throws DecodeException {
        return f.tensor(name).orElseThrow(() -> new DecodeException(Reason.MISSING_TENSOR, "sparse codes: no tensor '" + name + "'"));
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof SparseCodes s && s.sae.equals(sae) && s.dSae == dSae && Arrays.equals(s.rowStart, rowStart)
                && Arrays.equals(s.indices, indices) && Arrays.equals(s.values, values);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(indices) * 31 + Arrays.hashCode(values);
    }

    @Override
    public String toString() {
        return "SparseCodes[sae=" + sae + ", tokens=" + tokens() + ", nnz=" + nonZeros() + "]";
    }
}
