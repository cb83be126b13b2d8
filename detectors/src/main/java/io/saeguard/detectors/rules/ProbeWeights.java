package io.saeguard.detectors.rules;

import io.saeguard.detectors.spi.DetectorConfigException;
import io.saeguard.detectors.spi.RuleContext;
import io.saeguard.topics.DecodeException;
import io.saeguard.topics.safetensors.SafetensorsFile;
import io.saeguard.topics.safetensors.SafetensorsWriter;
import io.saeguard.topics.safetensors.Tensor;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Objects;

/**
 * Logistic-regression weights in a safetensors file: tensor {@code weight} {@code [d]} (or
 * {@code [1, d]}) and tensor {@code bias} {@code []} or {@code [1]}, any floating dtype (read as F32).
 * The probability of a token is {@code σ(bias + weight · x)}.
 *
 * @param weight the weights (owned; never modified)
 * @param bias   the intercept
 */
public record ProbeWeights(float[] weight, double bias) {
    public ProbeWeights {
        Objects.requireNonNull(weight, "weight");
        if (weight.length == 0) {
            throw new IllegalArgumentException("a probe needs at least one weight");
        }
        for (float w : weight) {
            if (!Float.isFinite(w)) {
                throw new IllegalArgumentException("probe weights must be finite");
            }
        }
        if (!Double.isFinite(bias)) {
            throw new IllegalArgumentException("probe bias must be finite");
        }
    }

    /** Writes weights in the format {@link #read} expects (F32 {@code weight [d]}, F32 {@code bias [1]}). */
    public static void write(Path file, float[] weight, double bias) throws IOException {
        new SafetensorsWriter()
                .metadata("format", "saeguard-probe")
                .addF32("weight", new long[] {weight.length}, weight)
                .addF32("bias", new long[] {1}, new float[] {(float) bias})
                .writeTo(file);
    }

    /**
     * Reads the weights file that {@code key} under the rule names ({@code path}, relative to the definition's
     * directory), with errors naming the key and the fix.
     */
    static ProbeWeights read(RuleContext rule, String key, String path, String dimension) throws DetectorConfigException {
        Path file = rule.existingFile(key, path);
        String fix = "write a safetensors file with F32 tensors 'weight' [" + dimension + "] and 'bias' [1] "
                + "(e.g. safetensors.torch.save_file({'weight': w, 'bias': b}, path))";
        SafetensorsFile st;
        try {
            st = SafetensorsFile.open(file);
        } catch (IOException | DecodeException e) {
            throw rule.error(key, "cannot read '" + file + "': " + e.getMessage(), fix);
        }
        Tensor w = st.tensor("weight").orElseThrow(() -> rule.error(key, "'" + file + "' has no tensor 'weight' (found "
                + st.names() + ")", fix));
        Tensor b = st.tensor("bias").orElseThrow(() -> rule.error(key, "'" + file + "' has no tensor 'bias' (found "
                + st.names() + ")", fix));
        boolean vector = w.rank() == 1 || (w.rank() == 2 && w.dim(0) == 1);
        if (!vector || !w.dtype().isFloating()) {
            throw rule.error(key, "tensor 'weight' in '" + file + "' is " + w + ", expected a floating vector [" + dimension + "]", fix);
        }
        if (b.elementCount() != 1 || !b.dtype().isFloating()) {
            throw rule.error(key, "tensor 'bias' in '" + file + "' is " + b + ", expected one floating value", fix);
        }
        try {
            return new ProbeWeights(w.toFloatArray(), b.toFloatArray()[0]);
        } catch (IllegalArgumentException e) {
            throw rule.error(key, "'" + file + "': " + e.getMessage(), fix);
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ProbeWeights p && Arrays.equals(p.weight, weight) && Double.compare(p.bias, bias) == 0;
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(weight) * 31 + Double.hashCode(bias);
    }

    @Override
    public String toString() {
        return "ProbeWeights[d=" + weight.length + ", bias=" + bias + "]";
    }

    static double sigmoid(double z) {
        if (z >= 0) {
            return 1.0 / (1.0 + Math.exp(-z));
        }
        double e = Math.exp(z);
        return e / (1.0 + e);
    }
}
