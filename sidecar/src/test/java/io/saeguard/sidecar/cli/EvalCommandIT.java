package io.saeguard.sidecar.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.saeguard.sae.PythonSaeFixtures;
import io.saeguard.sidecar.testing.PythonReference;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code saeguard eval} on the demo's config (built-in MiniLM, the demo SAE, the 'computers' detector) and a few of the
 * demo's held-out texts: the report's metrics equal an independent numpy computation from the scores file.
 */
class EvalCommandIT {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    /** 8 texts about computers (positives) and 8 others, alternating between two groups. */
    private Path labelled() throws Exception {
        List<String> lines = new ArrayList<>();
        int pos = 0;
        int neg = 0;
        for (DemoCommand.Prompt p : DemoCommand.prompts()) {
            boolean computers = p.label().equals("computers");
            if (computers ? pos++ < 8 : neg++ < 8) {
                lines.add(JSON.createObjectNode().put("text", p.text()).put("label", computers).put("group", lines.size() % 2 == 0 ? "a" : "b")
                        .put("source", p.label()).toString());
            }
        }
        return Files.write(dir.resolve("labelled.jsonl"), lines);
    }

    @Test
    void theReportsMetricsEqualAnIndependentComputationFromTheScoresFile() throws Exception {
        PythonSaeFixtures.assumeAvailable();
        // Given the demo config and 16 labelled texts
        Path config = DemoCommand.assets(dir.resolve("demo"), 0, 1);
        Path data = labelled();
        Path report = dir.resolve("report.json");
        Path scores = dir.resolve("scores.jsonl");

        // When evaluated
        int exit = Main.execute("eval", "--config", config.toString(), "--data", data.toString(), "--out", report.toString(), "--report",
                dir.resolve("report.md").toString(), "--scores", scores.toString(), "--in-flight", "5");

        // Then the report has the six required fields for the detector, with the counts of the data
        assertThat(exit).isZero();
        JsonNode computers = JSON.readTree(report.toFile()).path("detectors").path("computers");
        assertThat(computers.has("auroc") && computers.has("tpr_at_1pct_fpr") && computers.has("precision") && computers.has("recall"))
                .as(computers.toString()).isTrue();
        assertThat(computers.path("n_positive").asInt()).isEqualTo(8);
        assertThat(computers.path("n_negative").asInt()).isEqualTo(8);
        assertThat(computers.path("groups").path("a").path("n_positive").asInt() + computers.path("groups").path("b").path("n_positive").asInt())
                .isEqualTo(8);
        // And the scores file has one line per text, in order, with every verdict and no text
        List<String> lines = Files.readAllLines(scores);
        assertThat(lines).hasSize(16);
        for (int i = 0; i < lines.size(); i++) {
            JsonNode line = JSON.readTree(lines.get(i));
            assertThat(line.path("index").asInt()).isEqualTo(i);
            assertThat(line.has("text")).isFalse();
            assertThat(line.path("verdicts").get(0).path("detector").asText()).isEqualTo("computers");
            assertThat(line.path("verdicts").get(0).path("action").asText()).isIn("allow", "flag", "steer", "clamp", "block");
        }
        System.out.println("EvalCommandIT: " + computers);
        // And numpy, from the scores file alone, computes the same AUROC, TPR at 1 % FPR, precision and recall
        JsonNode reference = numpy(scores);
        assertThat(computers.path("auroc").asDouble()).isCloseTo(reference.path("auroc").asDouble(), within(1e-9));
        assertThat(computers.path("tpr_at_1pct_fpr").asDouble()).isCloseTo(reference.path("tpr").asDouble(), within(1e-9));
        assertThat(computers.path("recall").asDouble()).isCloseTo(reference.path("recall").asDouble(), within(1e-9));
        if (reference.path("precision").isNull()) {
            assertThat(computers.path("precision").isNull()).isTrue();
        } else {
            assertThat(computers.path("precision").asDouble()).isCloseTo(reference.path("precision").asDouble(), within(1e-9));
        }
    }

    /** AUROC by all pairs (ties half); TPR over the (k+1)-th highest negative, k = floor(0.01 n-); precision/recall from actions. */
    private static JsonNode numpy(Path scores) throws Exception {
        String script = """
                import json, sys, numpy as np
                rows = [json.loads(l) for l in open(sys.argv[1])]
                s = np.array([r["verdicts"][0]["score"] for r in rows], dtype=np.float64)
                y = np.array([r["label"] for r in rows])
                f = np.array([r["verdicts"][0]["action"] != "allow" for r in rows])
                p, n = s[y], s[~y]
                diff = p[:, None] - n[None, :]
                auroc = float(((diff > 0) + 0.5 * (diff == 0)).mean())
                k = int(np.floor(0.01 * len(n) + 1e-9))
                tau = np.sort(n)[::-1][k]
                tpr = float((p > tau).mean())
                tp, fp = int((f & y).sum()), int((f & ~y).sum())
                print(json.dumps({"auroc": auroc, "tpr": tpr, "precision": tp / (tp + fp) if tp + fp else None, "recall": tp / int(y.sum())}))
                """;
        Process proc = new ProcessBuilder(PythonReference.interpreter(), "-c", script, scores.toString()).redirectErrorStream(true).start();
        String out = new String(proc.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(proc.waitFor()).as(out).isZero();
        return JSON.readTree(out);
    }

    @Test
    void aBadLineFailsTheRunNamingTheFileAndLineBeforeAnyTextIsChecked() throws Exception {
        // Given a file whose second line has a numeric label
        Path config = DemoCommand.assets(dir.resolve("demo"), 0, 1);
        Path data = Files.writeString(dir.resolve("bad.jsonl"), "{\"text\": \"fine\", \"label\": false}\n{\"text\": \"bad\", \"label\": 1}\n");
        StringWriter err = new StringWriter();

        // When
        int exit = Main.commandLine().setErr(new PrintWriter(err, true)).execute("eval", "--config", config.toString(), "--data", data.toString(),
                "--out", dir.resolve("r.json").toString());

        // Then
        assertThat(exit).isEqualTo(1);
        assertThat(err.toString()).contains("saeguard eval: error: " + data + ":2: 'label' must be true");
        assertThat(dir.resolve("r.json")).doesNotExist();
    }
}
