package io.saeguard.sidecar.testing;

import io.saeguard.sae.testing.ExternalTools;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;

/**
 * Where the real labelled text lives for the tests that measure detection on it (ToxiGen, XSTest; not part of the
 * repository, see the README's Tests section): the directory named by {@code -Dsaeguard.dataDir} or the environment
 * variable {@code SAEGUARD_DATA_DIR}. Where neither names an existing directory the test is skipped with a message that
 * says so, or fails when tools are required ({@code SAEGUARD_REQUIRE_TOOLS=1}, as in {@code .ci/run}, which also sets
 * the directory).
 */
public final class LabelledData {
    /** The environment variable naming the directory. */
    public static final String ENV = "SAEGUARD_DATA_DIR";
    /** The system property naming the directory (wins over the environment). */
    public static final String PROPERTY = "saeguard.dataDir";

    private LabelledData() {
    }

    /** The data directory; skips (or fails, when required) the calling test where there is none. */
    public static Path dir() {
        String named = System.getProperty(PROPERTY, System.getenv(ENV));
        String problem;
        if (named == null || named.isBlank()) {
            problem = "the labelled-data directory is not set (" + ENV + " or -D" + PROPERTY + ")";
        } else if (!Files.isDirectory(Path.of(named))) {
            problem = "the labelled-data directory " + named + " (" + ENV + " or -D" + PROPERTY + ") does not exist";
        } else {
            return Path.of(named);
        }
        if (ExternalTools.required()) {
            Assertions.fail(problem + ", and tools and data are required (" + ExternalTools.REQUIRE_ENV + "=1): set it to the directory "
                    + "holding toxigen/ and xstest/");
        }
        Assumptions.abort(problem + ": this test measures detection on real labelled text and is skipped without it; set it to the "
                + "directory holding toxigen/ and xstest/ (README, Tests)");
        throw new IllegalStateException("unreachable");
    }
}
