package io.saeguard.sidecar.cli;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;

/**
 * The MiniLM detector catalog bundled in the jar ({@code detectors/catalog/minilm}): the config {@code saeguard run}
 * uses when given none, so a fresh install guards text out of the box (the built-in MiniLM prompt model, the
 * catalog's SAE, and the {@code toxicity}, {@code refusal}, {@code harmful-request} and {@code computers} detectors).
 * Only {@code saeguard.jar} carries it; the production build, {@code saeguard-server.jar}, leaves it out.
 */
final class DefaultCatalog {
    static final String RESOURCES = "/io/saeguard/sidecar/catalog/minilm/";
    /** Every file the catalog's config reads, relative to its directory. */
    static final List<String> FILES = List.of("saeguard.yaml", "toxicity.yaml", "refusal.yaml", "harmful-request.yaml", "computers.yaml",
            "toxicity.probe.safetensors", "refusal.probe.safetensors", "harmful-request.probe.safetensors", "sae/cfg.json",
            "sae/sae_weights.safetensors", "sae/sparsity.safetensors");

    /** Why {@code saeguard run} without {@code --config} cannot start from a jar without the catalog, and what to do instead. */
    static final String ABSENT = "no --config given, and this jar has no built-in catalog: the production build (saeguard-server.jar, "
            + "the default container image) leaves the demo's MiniLM model, SAE and detector catalog out. Pass --config FILE naming "
            + "your SAE (saes[].path or saes[].release) and, to decide text, prompts.model as a .onnx file with prompts.tokenizer its "
            + "tokenizer.json; or run saeguard.jar (the demo image), which carries the built-in catalog";

    private DefaultCatalog() {
    }

    /** Whether this jar carries the catalog: {@code saeguard.jar} does, the production {@code saeguard-server.jar} does not. */
    static boolean bundled() {
        return DefaultCatalog.class.getResource(RESOURCES + FILES.get(0)) != null;
    }

    /** Writes the bundled catalog into {@code dir} (created) and returns its config file. */
    static Path extract(Path dir) throws IOException {
        for (String name : FILES) {
            Path target = dir.resolve(name);
            Files.createDirectories(target.getParent());
            try (InputStream in = DefaultCatalog.class.getResourceAsStream(RESOURCES + name)) {
                if (in == null) {
                    throw new IOException(bundled() ? "the jar lacks the bundled catalog file " + RESOURCES + name
                            + "; rebuild it with ./mvnw package" : ABSENT);
                }
                Files.copy(in, target, StandardCopyOption.REPLACE_EXISTING);
            }
        }
        return dir.resolve("saeguard.yaml");
    }
}
