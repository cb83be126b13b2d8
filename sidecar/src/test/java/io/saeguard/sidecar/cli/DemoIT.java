package io.saeguard.sidecar.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.saeguard.sae.PythonSaeFixtures;
import io.saeguard.sidecar.testing.PromptReference;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code saeguard demo} end to end (embedded broker, MiniLM prompt model, the MiniLM catalog's SAE and
 * detectors, held-out ToxiGen statements, XSTest prompts and fortunes replayed as prompt events). The
 * {@code computers} detections are checked against an independent computation: the same texts' hidden
 * states encoded by the float64 PyTorch SAE reference and the features rule applied by hand; and each
 * detector's precision/recall on its own held-out texts must stay at what was measured (demo/README.md).
 */
class DemoIT {
    /** Floors per detector (precision, recall), below what demo/README.md reports for the shipped assets, with margin. */
    static final Map<String, double[]> FLOORS = Map.of(
            "computers", new double[] {0.80, 0.25},
            "toxicity", new double[] {0.80, 0.12},
            // harmful-request: the catalog rebuilt with its L2 strength chosen on training folds (issue 17) measures 1.00 / 0.18
            // (7 of 39 unsafe prompts); the floor allows two fewer
            "harmful-request", new double[] {0.70, 0.12});

    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        PythonSaeFixtures.assumeAvailable();
    }

    @Test
    void theDemoDetectsWhatTheReferenceSaysWithTheMeasuredPrecisionAndRecall() throws Exception {
        // Given the demo's held-out prompts and its detector
        List<DemoCommand.Prompt> prompts = DemoCommand.prompts();
        Path config = DemoCommand.assets(dir.resolve("ref"), 0, 1);
        JsonNode detector = new ObjectMapper(new YAMLFactory()).readTree(dir.resolve("ref/computers.yaml").toFile());
        assertThat(dir.resolve("ref/toxicity.yaml")).exists();
        assertThat(dir.resolve("ref/harmful-request.yaml")).exists();
        assertThat(detector.path("rule").path("kind").asText()).isEqualTo("features");
        assertThat(detector.path("rule").path("match").asText("any")).isEqualTo("any");

        // When the demo runs
        ByteArrayOutputStream console = new ByteArrayOutputStream();
        DemoCommand.Summary s = DemoCommand.run(dir.resolve("run"), 0, 1, 3, Duration.ofSeconds(110),
                new PrintStream(console, true, StandardCharsets.UTF_8), false);
        String out = console.toString(StandardCharsets.UTF_8);
        System.out.println(out);

        // Then every prompt was decided within the run, and the console told the user where to look
        assertThat(s.decided()).isEqualTo(prompts.size());
        assertThat(out).contains("precision").contains("/metrics").contains("ALERT");
        for (Map.Entry<String, double[]> floor : FLOORS.entrySet()) {
            DemoCommand.DetectorResult r = s.detector(floor.getKey());
            System.out.printf("DemoIT: %s on %d+%d prompts (run %.1f s): precision %.3f recall %.3f (TP %d FP %d FN %d), elsewhere %d%n", floor.getKey(),
                    r.positives(), r.negatives(), s.seconds(), r.precision(), r.recall(), r.truePositives(), r.falsePositives(), r.falseNegatives(),
                    r.elsewhere());
            assertThat(r.positives()).as(floor.getKey() + " positives replayed").isPositive();
            assertThat(r.precision()).as(floor.getKey() + " precision").isGreaterThanOrEqualTo(floor.getValue()[0]);
            assertThat(r.recall()).as(floor.getKey() + " recall").isGreaterThanOrEqualTo(floor.getValue()[1]);
        }
        java.util.Set<String> computersFired = s.detector("computers").fired();

        // And its detections are exactly those of the PyTorch SAE reference on the same hidden states
        PromptReference ref = PromptReference.of(prompts.stream().map(DemoCommand.Prompt::text).toList(), DemoCommand.MAX_TOKENS, dir.resolve("ref/sae"), dir);
        JsonNode rule = detector.path("rule").path("features");
        int[] ids = new int[rule.size()];
        double[] thresholds = new double[rule.size()];
        for (int j = 0; j < rule.size(); j++) {
            ids[j] = rule.get(j).path("id").asInt();
            thresholds[j] = rule.get(j).path("threshold").asDouble();
        }
        double[] scores = ref.scores(ids, thresholds);
        int expectedFired = 0;
        int mismatches = 0;
        for (int i = 0; i < prompts.size(); i++) {
            boolean fired = scores[i] >= 1.0;
            expectedFired += fired ? 1 : 0;
            if (Math.abs(scores[i] - 1.0) > 1e-4) { // a score on the edge may round either way in F32
                mismatches += fired == computersFired.contains("demo-" + i) ? 0 : 1;
            }
        }
        assertThat(mismatches).as("prompts the demo decided differently from the reference").isZero();
        System.out.println("DemoIT: the reference's computers rule fires on " + expectedFired + " prompts, the demo's on " + computersFired.size());
    }
}
