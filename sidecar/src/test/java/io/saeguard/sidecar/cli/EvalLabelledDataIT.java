package io.saeguard.sidecar.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.saeguard.sidecar.testing.LabelledData;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code saeguard eval} on real labelled text: ToxiGen's hateful vs neutral statements (from the directory
 * {@link LabelledData} names; skipped without it), through the demo's config, with the statements' target group as
 * the breakdown. It checks that every statement is counted, each group is reported, and the metrics are defined; the
 * numbers are printed (the demo has no toxicity detector, so they are a floor, not a target).
 */
class EvalLabelledDataIT {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    @Test
    void toxigenRunsThroughTheDemoConfigWithEveryStatementAndGroupCounted() throws Exception {
        // Given ToxiGen as JSONL: hate/<group>.txt positive, neutral/<group>.txt negative, one statement a line
        Path toxigen = LabelledData.dir().resolve("toxigen");
        List<String> lines = new ArrayList<>();
        int[] counts = new int[2];
        for (String kind : List.of("hate", "neutral")) {
            try (Stream<Path> files = Files.list(toxigen.resolve(kind))) {
                for (Path f : files.sorted().toList()) {
                    String group = f.getFileName().toString().replaceFirst("\\.txt$", "");
                    for (String s : Files.readAllLines(f, StandardCharsets.UTF_8)) {
                        if (!s.isBlank()) {
                            lines.add(JSON.createObjectNode().put("text", s.strip()).put("label", kind.equals("hate")).put("group", group).toString());
                            counts[kind.equals("hate") ? 0 : 1]++;
                        }
                    }
                }
            }
        }
        Path data = Files.write(dir.resolve("toxigen.jsonl"), lines);
        Path config = DemoCommand.assets(dir.resolve("demo"), 0, 1); // one thread, as every test in this JVM (DJL is configured once)

        // When evaluated
        Path report = dir.resolve("report.json");
        int exit = Main.execute("eval", "--config", config.toString(), "--data", data.toString(), "--out", report.toString(), "--report",
                dir.resolve("report.md").toString());

        // Then every statement is counted, every group reported, and the metrics are defined
        assertThat(exit).isZero();
        JsonNode computers = JSON.readTree(report.toFile()).path("detectors").path("computers");
        System.out.println("EvalLabelledDataIT (ToxiGen through the demo config): " + computers);
        assertThat(computers.path("n_positive").asInt()).isEqualTo(counts[0]);
        assertThat(computers.path("n_negative").asInt()).isEqualTo(counts[1]);
        assertThat(computers.path("auroc").asDouble()).isBetween(0.0, 1.0);
        assertThat(computers.path("tpr_at_1pct_fpr").asDouble()).isBetween(0.0, 1.0);
        try (Stream<Path> groups = Files.list(toxigen.resolve("hate"))) {
            assertThat(computers.path("groups").size()).isEqualTo((int) groups.count());
        }
    }
}
