package io.saeguard.bench;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.saeguard.sae.PythonSaeFixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Python baselines' pieces a benchmark ratio rests on ({@code bench/baseline/check_baselines.py}): sliced.py's
 * encoder of the watched columns gives the full encoder's codes (F32 and BF16 GEMM, one and five columns), and the
 * reference-BLAS check that makes run.sh and the report refuse a flattering ratio tells netlib from OpenBLAS/MKL.
 */
class BaselinesIT {
    private static final Path ROOT = Path.of("").toAbsolutePath().getParent();

    @TempDir
    Path dir;

    @Test
    void slicedEncoderEqualsTheFullEncodersColumnsAndReferenceBlasIsRecognised() throws Exception {
        PythonSaeFixtures.assumeAvailable();
        // When the self-check runs on a fresh random SAE
        Path log = dir.resolve("check.json");
        Process p = new ProcessBuilder(PythonSaeFixtures.interpreter(), "check_baselines.py").directory(ROOT.resolve("bench/baseline").toFile())
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        boolean done = p.waitFor(2, TimeUnit.MINUTES);
        if (!done) {
            p.destroyForcibly();
        }
        String output = Files.readString(log);
        System.out.println(output);

        // Then every check passed, and the encoders had codes to compare
        assertThat(done).as("check_baselines.py finished; output:%n%s", output).isTrue();
        JsonNode r = new ObjectMapper().readTree(output);
        assertThat(r.path("sliced")).hasSize(4);
        for (JsonNode c : r.path("sliced")) {
            assertThat(c.path("active").asInt()).as("codes fire: %s", c).isPositive();
            assertThat(c.path("ok").asBoolean()).as("sliced equals full: %s", c).isTrue();
        }
        assertThat(r.path("reference_blas").path("reference").path("found").asBoolean()).isTrue();
        assertThat(r.path("reference_blas").path("openblas").path("found").asBoolean()).isFalse();
        assertThat(r.path("ok").asBoolean()).isTrue();
        assertThat(p.exitValue()).isZero();
    }
}
