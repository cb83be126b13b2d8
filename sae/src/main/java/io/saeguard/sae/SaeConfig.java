package io.saeguard.sae;

import java.nio.file.Path;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * What an SAE is, independent of its weights: where it was loaded from, its architecture and
 * sizes, and the input/output transforms the encoder must apply.
 *
 * @param path the SAE directory (or file) given by the user
 * @param format the on-disk layout it was read from
 * @param architecture the encode rule
 * @param dIn input width (the model's residual width at the hook)
 * @param dSae dictionary size (for a composed SAE: base plus residual)
 * @param k active features per token for TopK-style SAEs
 * @param applyBDecToInput subtract {@code b_dec} from the input before encoding (SAELens default true)
 * @param normalization the input normalisation mode
 * @param inputScale for {@link Normalization#EXPECTED_AVERAGE_ONLY_IN}: the input factor
 * @param outputScale for {@link Normalization#EXPECTED_AVERAGE_ONLY_IN}: the decoder output is divided by it
 * @param rescaleActsByDecoderNorm SAELens TopK option: rank {@code pre·‖W_dec[i]‖}
 * @param storedDtype the weights' dtype on disk (e.g. F32, BF16); the runtime holds F32
 * @param hook the hook point named by the files, if any
 * @param model the model named by the files, if any
 * @param files the files the weights came from (for the weights checksum)
 */
public record SaeConfig(Path path, SaeFormat format, Architecture architecture, int dIn, int dSae, OptionalInt k,
        boolean applyBDecToInput, Normalization normalization, double inputScale, double outputScale,
        boolean rescaleActsByDecoderNorm, String storedDtype, Optional<String> hook, Optional<String> model,
        List<Path> files) {

    public SaeConfig {
        Objects.requireNonNull(path, "path");
        Objects.requireNonNull(format, "format");
        Objects.requireNonNull(architecture, "architecture");
        Objects.requireNonNull(k, "k");
        Objects.requireNonNull(normalization, "normalization");
        Objects.requireNonNull(storedDtype, "storedDtype");
        Objects.requireNonNull(hook, "hook");
        Objects.requireNonNull(model, "model");
        files = List.copyOf(files);
        if (dIn < 1 || dSae < 1) {
            throw new IllegalArgumentException("d_in and d_sae must be positive, got " + dIn + " and " + dSae);
        }
    }
}
