package io.saeguard.detectors;

import static org.assertj.core.api.Assertions.assertThat;

import io.saeguard.topics.codes.SparseCodes;
import io.saeguard.topics.events.Action;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** Every pack in {@code detectors/catalog/} loads, validates, runs, and cites or flags its feature ids. */
class CatalogTest {
    static final Path CATALOG = Path.of("catalog");
    static final int GEMMA_SCOPE_16K = 16384;
    static final int GEMMA_2_2B_D_MODEL = 2304;
    /** A YAML list entry naming a feature: "- 123" or "- id: 123". */
    static final Pattern FEATURE_LINE = Pattern.compile("^\\s*-\\s*(?:id:\\s*)?(\\d+)\\b.*$");

    private static List<Path> packs() throws IOException {
        try (Stream<Path> files = Files.list(CATALOG)) {
            return files.filter(p -> p.toString().endsWith(".yaml")).sorted().toList();
        }
    }

    @Test
    void theCatalogHasTheThreePacks() throws Exception {
        assertThat(packs()).extracting(p -> p.getFileName().toString())
                .contains("toxicity.yaml", "refusal.yaml", "wmdp-bio-dsg.yaml");
    }

    @Test
    void everyPackLoadsWithUniqueIdsForTheGemmaScopeSae() throws Exception {
        List<DetectorDefinition> all = DetectorDefinitions.loadAll(packs());

        assertThat(all).extracting(DetectorDefinition::sae).containsOnly("gemma-2b-l20-16k");
        assertThat(all).extracting(d -> d.rule().kind()).contains("features", "dsg");
    }

    @Test
    void everyPackRunsInAnEngineAndAllowsAChunkWithoutActiveFeatures() throws Exception {
        // Given a decoder of Gemma Scope's shape
        DecoderDirections directions = new DecoderDirections() {
            @Override
            public int dIn(String sae) {
                return GEMMA_2_2B_D_MODEL;
            }

            @Override
            public void direction(String sae, int feature, float[] dst) {
                dst[feature % dst.length] = 1;
            }
        };
        DetectorEngine engine = DetectorEngine.create(DetectorDefinitions.loadAll(packs()), directions,
                new StateLimits(Duration.ofMinutes(5), 100));
        SparseCodes codes = SparseCodes.ofCsr("gemma-2b-l20-16k", GEMMA_SCOPE_16K, new int[] {0, 0, 0}, new int[0], new float[0]);

        // When
        ChunkOutcome out = engine.evaluate(new Chunk("r", "gemma-2b-l20-16k", 0, codes, Optional.empty(), 0,
                new float[] {300f, 80f}, Optional.of(new int[] {2, 651}), true), 0);

        // Then
        assertThat(out.decision().action()).isEqualTo(Action.ALLOW);
        assertThat(out.verdicts()).hasSize(packs().size());
        assertThat(engine.steeringVectors()).isNotEmpty();
    }

    @Test
    void everyFeatureIdIsCitedOrMarkedUnverified() throws Exception {
        List<String> offenders = new ArrayList<>();
        for (Path p : packs()) {
            boolean inFeatures = false;
            for (String line : Files.readAllLines(p)) {
                if (line.matches("^\\s*features:.*")) {
                    inFeatures = true;
                    continue;
                }
                if (inFeatures && !line.isBlank() && !line.startsWith("    ") && !line.trim().startsWith("#")) {
                    inFeatures = false;
                }
                Matcher m = FEATURE_LINE.matcher(line);
                if (inFeatures && m.matches()) {
                    int id = Integer.parseInt(m.group(1));
                    assertThat(id).as("%s: feature id", p).isLessThan(GEMMA_SCOPE_16K);
                    if (!line.contains("# UNVERIFIED placeholder: replace with ids from Neuronpedia gemma-2-2b/20-gemmascope-res-16k")
                            && !line.contains("# Neuronpedia: gemma-2-2b/20-gemmascope-res-16k/" + id)) {
                        offenders.add(p.getFileName() + ": " + line.trim());
                    }
                }
            }
        }
        assertThat(offenders).isEmpty();
    }

    @Test
    void theReadmeSaysHowToAdaptAPack() throws Exception {
        String readme = Files.readString(CATALOG.resolve("README.md"));

        assertThat(readme).contains("UNVERIFIED").contains("Neuronpedia").contains("saeguard select").contains("Adapting a pack");
    }

    @Test
    void theGemmaScopePacksAreMarkedUnverifiedAndNoPackBlocksOnItsOwnFailure() throws Exception {
        for (Path p : packs()) {
            DetectorDefinition d = DetectorDefinitions.load(p);
            // Their ids are cited, their thresholds placeholders: nobody here ran Gemma
            assertThat(d.status()).as(p.toString()).isEqualTo(DetectorDefinition.Status.UNVERIFIED);
            boolean blocks = d.policy().bands().stream().anyMatch(b -> b.action() == Action.BLOCK);
            assertThat(blocks && d.policy().fail() == Policy.FailMode.CLOSED).as(p + ": block with fail: closed").isFalse();
        }
    }
}
