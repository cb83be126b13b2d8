package io.saeguard.sidecar.catalog;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.saeguard.sae.testing.ExternalTools;
import io.saeguard.sidecar.cli.Main;
import io.saeguard.sidecar.testing.LabelledData;
import io.saeguard.sidecar.testing.PythonReference;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CI guard of the MiniLM catalog: {@code saeguard eval} runs the shipped config over each pack's held-out split
 * (rebuilt from the labelled data by the catalog's own {@code prepare.py}; {@link LabelledData} skips the test without
 * the data) and fails when a pack's AUROC falls more than {@link #SLACK} below the {@code held_out_auroc} its header
 * claims. The engine runs on one thread, as every test in this JVM.
 */
class MiniLmCatalogQualityIT {
    static final double SLACK = 0.02;
    static final Path CATALOG = Path.of("..", "detectors", "catalog", "minilm").toAbsolutePath().normalize();
    static final List<String> PACKS = List.of("toxicity", "harmful-request", "refusal");
    private static final Pattern CLAIM = Pattern.compile("(?m)^# held_out_auroc: ([0-9.]+)\\s*$");

    @TempDir
    Path dir;

    @Test
    void everyPackStaysWithinTwoHundredthsOfTheHeldOutAurocItsHeaderClaims() throws Exception {
        // Given the held-out splits, written by the catalog's prepare.py from the labelled data
        Path data = LabelledData.dir();
        Path splits = dir.resolve("splits");
        ExternalTools.assumeInstalled(Files.isExecutable(Path.of(PythonReference.interpreter())), PythonReference.interpreter(), "python3");
        Process p = new ProcessBuilder(PythonReference.interpreter(), CATALOG.resolve("prepare.py").toString(), data.toString(), splits.toString())
                .redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(log).isZero();
        // And the shipped catalog, its config on one engine thread
        Path catalog = copy(CATALOG, dir.resolve("catalog"));
        Path config = catalog.resolve("saeguard.yaml");
        Files.writeString(config, Files.readString(config) + "engine:\n  device: cpu\n  threads: 1\n");

        List<String> failures = new ArrayList<>();
        for (String pack : PACKS) {
            Matcher m = CLAIM.matcher(Files.readString(CATALOG.resolve(pack + ".yaml")));
            assertThat(m.find()).as("%s.yaml states '# held_out_auroc: X' in its header", pack).isTrue();
            double claimed = Double.parseDouble(m.group(1));

            // When eval runs the config over the pack's held-out texts
            Path report = dir.resolve(pack + "-eval.json");
            int exit = Main.execute("eval", "--config", config.toString(), "--data", splits.resolve(pack + "-test.jsonl").toString(), "--out",
                    report.toString());
            assertThat(exit).isZero();
            JsonNode measured = new ObjectMapper().readTree(report.toFile()).path("detectors").path(pack);

            // Then its AUROC is at most SLACK below the claim
            double auroc = measured.path("auroc").asDouble();
            System.out.printf("MiniLmCatalogQualityIT %s: AUROC %.4f (header %.3f), TPR@1%%FPR %.3f, precision %s, recall %.3f, n %d+%d%n", pack, auroc,
                    claimed, measured.path("tpr_at_1pct_fpr").asDouble(), measured.path("precision"), measured.path("recall").asDouble(),
                    measured.path("n_positive").asInt(), measured.path("n_negative").asInt());
            assertThat(measured.path("n_positive").asInt()).isPositive();
            assertThat(measured.path("n_negative").asInt()).isPositive();
            if (auroc < claimed - SLACK) {
                failures.add(String.format("%s: held-out AUROC %.4f is more than %.2f below the %.3f its header claims", pack, auroc, SLACK, claimed));
            }
        }
        assertThat(failures).isEmpty();
    }

    private static Path copy(Path from, Path to) throws IOException {
        try (Stream<Path> files = Files.walk(from)) {
            for (Path f : files.toList()) {
                Path rel = from.relativize(f);
                if (rel.startsWith("data")) {
                    continue;
                }
                Path target = to.resolve(rel.toString());
                if (Files.isDirectory(f)) {
                    Files.createDirectories(target);
                } else {
                    Files.copy(f, target);
                }
            }
        }
        return to;
    }
}
