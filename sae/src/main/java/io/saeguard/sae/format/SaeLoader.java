package io.saeguard.sae.format;

import io.saeguard.sae.Sae;
import io.saeguard.sae.SaeFormatException;
import io.saeguard.sae.SingleSae;
import io.saeguard.topics.DecodeException;
import io.saeguard.topics.safetensors.SafetensorsFile;
import io.saeguard.topics.safetensors.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * Loads an SAE from a directory (or an {@code .npz} file), recognising the format by the files
 * present (docs/algorithms.md#file-formats-and-hook-names):
 *
 * <table>
 * <caption>formats</caption>
 * <tr><th>files</th><th>format</th></tr>
 * <tr><td>{@code saeguard-composed.json}</td><td>composed (base + residual)</td></tr>
 * <tr><td>{@code params.npz}</td><td>Gemma Scope 1</td></tr>
 * <tr><td>{@code params.safetensors} + {@code config.json}</td><td>Gemma Scope 2</td></tr>
 * <tr><td>{@code hyperparams.json} + {@code checkpoints/final.safetensors}</td><td>Llama Scope</td></tr>
 * <tr><td>{@code cfg.json} + {@code sae_weights.safetensors}</td><td>SAELens (v5 or v6 cfg)</td></tr>
 * <tr><td>{@code cfg.json} + {@code sae.safetensors}</td><td>EleutherAI sparsify</td></tr>
 * </table>
 *
 * Every tensor's shape is checked against the config; any problem is a {@link SaeFormatException}
 * naming the file, the tensor, and the expected versus found shape.
 */
public final class SaeLoader {
    private SaeLoader() {
    }

    /** Loads the SAE at {@code path}. */
    public static Sae load(Path path) throws SaeFormatException {
        try {
            if (Files.isRegularFile(path) && path.getFileName().toString().endsWith(".npz")) {
                return GemmaScopeFormat.load(path);
            }
            if (!Files.isDirectory(path)) {
                throw SaeFormatException.in(path, "no such SAE directory (or .npz file)");
            }
            if (Files.isRegularFile(path.resolve(ComposedFormat.FILE))) {
                return ComposedFormat.load(path);
            }
            if (Files.isRegularFile(path.resolve("params.npz"))) {
                return GemmaScopeFormat.load(path.resolve("params.npz"));
            }
            if (Files.isRegularFile(path.resolve("params.safetensors"))) {
                return GemmaScope2Format.load(path);
            }
            if (Files.isRegularFile(path.resolve("hyperparams.json"))) {
                return LlamaScopeFormat.load(path);
            }
            if (Files.isRegularFile(path.resolve("cfg.json")) && Files.isRegularFile(path.resolve("sae_weights.safetensors"))) {
                return SaeLensFormat.load(path);
            }
            if (Files.isRegularFile(path.resolve("cfg.json")) && Files.isRegularFile(path.resolve("sae.safetensors"))) {
                return SparsifyFormat.load(path);
            }
            throw SaeFormatException.in(path, "not a recognised SAE directory; found [" + listing(path) + "], expected one of: "
                    + "cfg.json + sae_weights.safetensors (SAELens), params.npz (Gemma Scope), params.safetensors + config.json "
                    + "(Gemma Scope 2), cfg.json + sae.safetensors (sparsify), hyperparams.json + checkpoints/final.safetensors "
                    + "(Llama Scope), saeguard-composed.json");
        } catch (IOException e) {
            throw SaeFormatException.in(path, "cannot read: " + e);
        }
    }

    /** Loads a single-dictionary SAE; a composed one is an error here. */
    static SingleSae loadSingle(Path path) throws SaeFormatException {
        Sae s = load(path);
        if (s instanceof SingleSae single) {
            return single;
        }
        throw SaeFormatException.in(path, "expected a single SAE, found a composed one");
    }

    private static String listing(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            List<String> names = s.map(p -> p.getFileName().toString() + (Files.isDirectory(p) ? "/" : "")).sorted()
                    .limit(20).collect(Collectors.toList());
            return String.join(", ", names);
        }
    }

    /** Opens a safetensors weights file, memory-mapped. */
    static WeightFile safetensors(Path file) throws SaeFormatException {
        if (!Files.isRegularFile(file)) {
            throw SaeFormatException.in(file, "file not found");
        }
        try {
            SafetensorsFile f = SafetensorsFile.open(file);
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (Tensor t : f.tensors()) {
                tensors.put(t.name(), t);
            }
            return new WeightFile(file, tensors);
        } catch (DecodeException e) {
            throw new SaeFormatException(e.getMessage(), e);
        } catch (IOException e) {
            throw SaeFormatException.in(file, "cannot read: " + e);
        }
    }
}
