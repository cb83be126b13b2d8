package io.saeguard.sidecar.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.saeguard.sae.train.SparseDictionaryData;
import io.saeguard.sae.train.SparseDictionaryData.Mix;
import io.saeguard.topics.safetensors.SafetensorsFile;
import io.saeguard.topics.safetensors.SafetensorsWriter;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code saeguard train} as a user runs it: the fat jar in its own JVM, on synthetic activations
 * from a known sparse dictionary (d_in 64, 3 of 128 atoms per row; the shifted domain adds one of
 * 32 atoms the base never saw). One libtorch thread: on 2 shared cores it trains several times
 * faster than 2 (see TopKTrainerIT). Fresh seed per run, printed.
 */
class TrainCommandIT {
    private static final long SEED = new Random().nextLong() & 0x7fffffffL;
    private static final int D_IN = 64;
    private static SparseDictionaryData data;

    @TempDir
    Path dir;

    @BeforeAll
    static void data() {
        System.out.println("TrainCommandIT seed=" + SEED);
        data = new SparseDictionaryData(D_IN, 160, SEED);
    }

    private Path domainA(String name, int rows, long seed) throws Exception {
        return SparseDictionaryData.write(dir.resolve(name), data.rows(rows, seed, new Mix(0, 128, 3)), D_IN);
    }

    @Test
    void trainWritesASaeLensTopKSaeThatEncodeLoadsAndReportsHeldOutFvu() throws Exception {
        // Given 11,000 activation rows, a tenth held out
        Path input = domainA("a.safetensors", 11_000, SEED + 1);
        Path out = dir.resolve("sae");

        // When trained from the command line
        Run r = saeguard("train", "--input", input.toString(), "--out", out.toString(), "--d-sae", "128", "--k", "3", "--steps", "2000",
                "--batch", "256", "--holdout", "0.1", "--seed", Long.toString(SEED + 2), "--hook", "blocks.3.hook_resid_post",
                "--threads", "1");

        // Then it reports progress and held-out quality, and writes a SAELens TopK SAE with its density
        assertThat(r.code).as(r.err).isZero();
        assertThat(r.err).contains("step 2000/2000").contains("FVU").contains("L0 3.0").contains("held-out rows: FVU");
        for (String f : List.of("cfg.json", "sae_weights.safetensors", "sparsity.safetensors", "saeguard-training.json")) {
            assertThat(out.resolve(f)).isRegularFile();
        }
        JsonNode cfg = new ObjectMapper().readTree(out.resolve("cfg.json").toFile());
        assertThat(cfg.get("architecture").asText()).isEqualTo("topk");
        assertThat(cfg.get("metadata").get("hook_name").asText()).isEqualTo("blocks.3.hook_resid_post");
        JsonNode report = new ObjectMapper().readTree(out.resolve("saeguard-training.json").toFile());
        System.out.println("train: " + report);
        assertThat(report.get("command").asText()).startsWith("saeguard train --input");
        assertThat(report.get("steps").asInt()).isEqualTo(2000);
        assertThat(report.get("held_out").get("rows").asInt()).isEqualTo(1100);
        assertThat(report.get("held_out").get("fvu").asDouble()).isLessThan(0.15);
        assertThat(report.get("held_out").get("l0").asDouble()).isEqualTo(3.0);

        // And 'saeguard encode' loads it: k = 3 codes per token
        Path codes = dir.resolve("codes.safetensors");
        Run e = saeguard("encode", "--sae", out.toString(), "--input", input.toString(), "--output", codes.toString(), "--threads", "1");
        assertThat(e.code).as(e.err).isZero();
        assertThat(SafetensorsFile.open(codes).tensor("indices").orElseThrow().shape()).containsExactly(11_000, 3);
    }

    @Test
    void residualOfWritesAComposedSaeThatBeatsItsBaseOnTheShiftedDomainsHeldOutRows() throws Exception {
        // Given a base SAE trained on domain A
        Path base = dir.resolve("base");
        Run b = saeguard("train", "--input", domainA("a.safetensors", 8_000, SEED + 3).toString(), "--out", base.toString(), "--d-sae", "128",
                "--k", "3", "--steps", "1000", "--batch", "256", "--seed", Long.toString(SEED + 4), "--threads", "1");
        assertThat(b.code).as(b.err).isZero();
        // And activations of domain B, whose rows each carry one atom domain A never showed
        Path shifted = SparseDictionaryData.write(dir.resolve("b.safetensors"),
                data.rows(6_000, SEED + 5, new Mix(0, 128, 2), new Mix(128, 160, 1)), D_IN);
        Path out = dir.resolve("boosted");

        // When a residual SAE is trained on B with --residual-of the base, copying the base
        Run r = saeguard("train", "--input", shifted.toString(), "--out", out.toString(), "--d-sae", "64", "--k", "2", "--steps", "800",
                "--batch", "256", "--holdout", "0.25", "--residual-of", base.toString(), "--copy-base", "--seed", Long.toString(SEED + 6),
                "--threads", "1");

        // Then OUT is a self-contained composed SAE whose held-out FVU on B is well below the base's
        assertThat(r.code).as(r.err).isZero();
        assertThat(out.resolve("saeguard-composed.json")).isRegularFile();
        assertThat(out.resolve("base/sae_weights.safetensors")).isRegularFile();
        assertThat(out.resolve("residual/cfg.json")).isRegularFile();
        JsonNode report = new ObjectMapper().readTree(out.resolve("saeguard-training.json").toFile());
        System.out.println("residual: " + report);
        double baseFvu = report.get("base_held_out").get("fvu").asDouble();
        double composedFvu = report.get("held_out").get("fvu").asDouble();
        assertThat(composedFvu).isLessThan(0.6 * baseFvu);
        assertThat(report.get("held_out").get("l0").asDouble()).isEqualTo(5.0);
        assertThat(r.err).contains("held-out rows: BASE FVU").contains("-> composed FVU");
        Run inspect = saeguard("inspect", "--sae", out.toString());
        assertThat(inspect.code).as(inspect.err).isZero();
        JsonNode described = new ObjectMapper().readTree(inspect.out);
        assertThat(described.get("architecture").asText()).isEqualTo("composed");
        assertThat(described.get("d_sae").asInt()).isEqualTo(128 + 64);
    }

    @Test
    void badInputsFailWithOneLineNamingTheProblem() throws Exception {
        Path out = dir.resolve("out");
        // A missing input
        Run missing = saeguard("train", "--input", dir.resolve("nope.safetensors").toString(), "--out", out.toString(), "--d-sae", "8", "--k",
                "2");
        assertThat(missing.code).isEqualTo(1);
        assertThat(missing.err).contains("saeguard train: error:").contains("nope.safetensors: no such file or directory");
        // A file without 'activations'
        Path other = dir.resolve("other.safetensors");
        new SafetensorsWriter().addF32("hidden", new long[] {4, 8}, new float[32]).writeTo(other);
        Run noTensor = saeguard("train", "--input", other.toString(), "--out", out.toString(), "--d-sae", "8", "--k", "2");
        assertThat(noTensor.code).isEqualTo(1);
        assertThat(noTensor.err).contains("no tensor 'activations' (found: hidden)");
        // A vector instead of a matrix
        Path flat = dir.resolve("flat.safetensors");
        new SafetensorsWriter().addF32("activations", new long[] {32}, new float[32]).writeTo(flat);
        Run badShape = saeguard("train", "--input", flat.toString(), "--out", out.toString(), "--d-sae", "8", "--k", "2");
        assertThat(badShape.code).isEqualTo(1);
        assertThat(badShape.err).contains("must have shape [n, d_in], found [32]");
        // k larger than the dictionary
        Path ok = domainA("ok.safetensors", 64, SEED);
        Run badK = saeguard("train", "--input", ok.toString(), "--out", out.toString(), "--d-sae", "8", "--k", "9");
        assertThat(badK.code).isEqualTo(1);
        assertThat(badK.err).contains("k must be in [1, d_sae = 8], got 9");
        // A base SAE of another width
        Path narrow = dir.resolve("narrow");
        Files.createDirectories(narrow);
        Files.writeString(narrow.resolve("cfg.json"), "{\"architecture\": \"topk\", \"d_in\": 4, \"d_sae\": 8, \"k\": 2}");
        new SafetensorsWriter().addF32("W_enc", new long[] {4, 8}, new float[32]).addF32("b_enc", new long[] {8}, new float[8])
                .addF32("W_dec", new long[] {8, 4}, new float[32]).addF32("b_dec", new long[] {4}, new float[4])
                .writeTo(narrow.resolve("sae_weights.safetensors"));
        Run badBase = saeguard("train", "--input", ok.toString(), "--out", out.toString(), "--d-sae", "8", "--k", "2", "--residual-of",
                narrow.toString(), "--threads", "1");
        assertThat(badBase.code).isEqualTo(1);
        assertThat(badBase.err).contains("rows have d_in 64").contains("expects d_in 4");
        // An output directory that already holds files
        Files.createDirectories(out);
        Files.writeString(out.resolve("keep.txt"), "x");
        Run notEmpty = saeguard("train", "--input", ok.toString(), "--out", out.toString(), "--d-sae", "8", "--k", "2");
        assertThat(notEmpty.code).isEqualTo(1);
        assertThat(notEmpty.err).contains("is not empty");
    }

    @Test
    void helpDescribesInputOutputAndOptions() throws Exception {
        Run r = saeguard("train", "--help");
        assertThat(r.code).isZero();
        assertThat(r.out).contains("Usage: saeguard train").contains("--residual-of=BASE").contains("--holdout=FRACTION")
                .contains("'activations'").contains("sparsity.safetensors").contains("--steps=N").contains("--epochs=N");
    }

    record Run(int code, String out, String err) {
    }

    private Run saeguard(String... args) throws Exception {
        Path jar = Path.of(System.getProperty("saeguard.jar", "target/saeguard.jar"));
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-jar", jar.toString()));
        cmd.addAll(List.of(args));
        Path err = Files.createTempFile(dir, "stderr", ".txt");
        Process p = new ProcessBuilder(cmd).redirectError(err.toFile()).start();
        String out;
        try (InputStream in = p.getInputStream()) {
            out = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        assertThat(p.waitFor(300, TimeUnit.SECONDS)).isTrue();
        return new Run(p.exitValue(), out, Files.readString(err));
    }
}
