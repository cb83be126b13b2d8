package io.saeguard.topics.repo;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every document a file of this repository cites resolves inside the repository: a reader never needs a
 * file that is not here. Scans the tracked (and new, not ignored) text files for {@code .md} mentions,
 * repository paths and Markdown links ({@link ReferenceScanner} says exactly what counts).
 */
class RepositoryReferencesTest {
    /** This test and its scanner: their examples are bad references on purpose. */
    private static final Set<String> SELF = Set.of("RepositoryReferencesTest.java", "ReferenceScanner.java");
    private static final Set<String> TEXT = Set.of("java", "md", "yaml", "yml", "py", "xml", "sh", "properties", "toml", "txt");

    @Test
    void everyReferenceInTheRepositoryResolvesInsideIt() throws Exception {
        // Given
        Path root = repositoryRoot();
        ReferenceScanner scanner = new ReferenceScanner(root, topLevelFolders(root));

        // When
        List<ReferenceScanner.Problem> problems = new ArrayList<>();
        for (Path file : textFiles(root)) {
            if (!SELF.contains(file.getFileName().toString())) {
                problems.addAll(scanner.scan(file));
            }
        }

        // Then
        assertThat(problems).as("references that do not resolve inside the repository:\n%s",
                problems.stream().map(Object::toString).collect(Collectors.joining("\n"))).isEmpty();
    }

    @Test
    void aReferenceToAMissingFileIsReportedWithItsLine(@TempDir Path root) throws Exception {
        // Given
        write(root, "docs/algorithms.md", "# Algorithms\n\n## DSG\n");
        write(root, "sae/Foo.java", "// fine: docs/algorithms.md#dsg\n// bad: see missing-notes.md §3\n");

        // When
        List<ReferenceScanner.Problem> problems = new ReferenceScanner(root, Set.of("docs", "sae")).scan(Path.of("sae/Foo.java"));

        // Then
        assertThat(problems).singleElement().satisfies(p -> {
            assertThat(p.line()).isEqualTo(2);
            assertThat(p.reference()).isEqualTo("missing-notes.md");
            assertThat(p.toString()).startsWith("sae/Foo.java:2: 'missing-notes.md'");
        });
    }

    @Test
    void aMissingAnchorIsReported(@TempDir Path root) throws Exception {
        // Given
        write(root, "docs/algorithms.md", "# Algorithms\n\n## Windowed DSG\n\n```\n# not a heading\n```\n");
        write(root, "README.md", "See [`algorithms.md`](docs/algorithms.md#windowed-dsg) and docs/algorithms.md#not-a-heading.\n");

        // When
        List<ReferenceScanner.Problem> problems = new ReferenceScanner(root, Set.of("docs")).scan(Path.of("README.md"));

        // Then
        assertThat(problems).singleElement().satisfies(p -> assertThat(p.reference()).isEqualTo("docs/algorithms.md#not-a-heading"));
    }

    @Test
    void mentionsOfTheSharedNotesAreReported(@TempDir Path root) throws Exception {
        // Given
        write(root, "a.py", "# from ../shared/notes/x and shared/notes.md\n# dashboards/shared_panel is fine\n");

        // When
        List<ReferenceScanner.Problem> problems = new ReferenceScanner(root, Set.of("dashboards")).scan(Path.of("a.py"));

        // Then
        assertThat(problems).extracting(ReferenceScanner.Problem::reference).contains("../shared", "shared/")
                .allSatisfy(r -> assertThat(r).doesNotContain("shared_panel"));
    }

    @Test
    void urlsElisionsPlaceholdersGlobsAndBuildOutputsAreNotReferences(@TempDir Path root) throws Exception {
        // Given
        write(root, "detectors/catalog/toxicity.yaml", "id: t\n");
        write(root, "docs/results/x-1435.md", "# x\n");
        write(root, "docs/a.md", String.join("\n",
                "https://github.com/kroxylicious/kroxylicious/blob/main/DEV_GUIDE.md",
                "sidecar/.../metrics/Metrics.java and sidecar/…/Metrics.java",
                "$DIR/README.md, <name>.md, detectors/{id}.yaml",
                "detectors/catalog/*.yaml",
                "java -jar sidecar/target/saeguard.jar",
                "{@link Foo#bar} and Foo.java",
                "saeguard select --report report.md; python3 r.py RAW_DIR OUT.md RAW_DIR/roofline.md",
                "(`results/x-1435.md`, `-1423.md`) and out=\"x-$(date).md\""));

        // When
        List<ReferenceScanner.Problem> problems = new ReferenceScanner(root, Set.of("sidecar", "detectors", "docs"))
                .scan(Path.of("docs/a.md"));

        // Then
        assertThat(problems).isEmpty();
    }

    @Test
    void aGlobMatchesAcrossFolders(@TempDir Path root) throws Exception {
        // Given
        write(root, "dashboards/grafana/provisioning/dashboards/d.yaml", "x: 1\n");
        write(root, "docs/a.md", "dashboards/grafana/provisioning/*/*.yaml and dashboards/grafana/provisioning/*/*.json\n");

        // When
        List<ReferenceScanner.Problem> problems = new ReferenceScanner(root, Set.of("dashboards", "docs")).scan(Path.of("docs/a.md"));

        // Then
        assertThat(problems).extracting(ReferenceScanner.Problem::reference).containsExactly("dashboards/grafana/provisioning/*/*.json");
    }

    @Test
    void aGlobThatMatchesNothingIsReported(@TempDir Path root) throws Exception {
        // Given
        write(root, "detectors/catalog/toxicity.yaml", "id: t\n");
        write(root, "docs/a.md", "detectors/catalog/*.json\n");

        // When
        List<ReferenceScanner.Problem> problems = new ReferenceScanner(root, Set.of("detectors", "docs")).scan(Path.of("docs/a.md"));

        // Then
        assertThat(problems).extracting(ReferenceScanner.Problem::reference).containsExactly("detectors/catalog/*.json");
    }

    @Test
    void headingIdsFollowGitHub() {
        assertThat(ReferenceScanner.slug("The wire contract (`topics/`)")).isEqualTo("the-wire-contract-topics");
        assertThat(ReferenceScanner.slug("Reconstruction quality: FVU")).isEqualTo("reconstruction-quality-fvu");
        assertThat(ReferenceScanner.slug("probe and raw-probe")).isEqualTo("probe-and-raw-probe");
    }

    private static void write(Path root, String relative, String text) throws IOException {
        Path f = root.resolve(relative);
        Files.createDirectories(f.getParent());
        Files.writeString(f, text, StandardCharsets.UTF_8);
    }

    /** The folder holding {@code mvnw} and the {@code topics} module, above the directory Maven runs tests in. */
    static Path repositoryRoot() {
        Path dir = Path.of("").toAbsolutePath();
        while (dir != null) {
            if (Files.isRegularFile(dir.resolve("mvnw")) && Files.isDirectory(dir.resolve("topics"))) {
                return dir;
            }
            dir = dir.getParent();
        }
        throw new IllegalStateException("no repository root (a folder with mvnw and topics/) above " + Path.of("").toAbsolutePath());
    }

    private static Set<String> topLevelFolders(Path root) throws IOException {
        try (Stream<Path> s = Files.list(root)) {
            return s.filter(Files::isDirectory).map(p -> p.getFileName().toString())
                    .filter(n -> !n.equals(".git") && !n.equals("target")).collect(Collectors.toSet());
        }
    }

    /**
     * The text files git tracks, plus new ones it does not ignore ({@code git ls-files --cached --others
     * --exclude-standard}); without git (a source archive), every file outside {@code target/} and hidden folders.
     */
    private static List<Path> textFiles(Path root) throws IOException, InterruptedException {
        List<Path> all = gitFiles(root);
        if (all == null) {
            try (Stream<Path> s = Files.walk(root)) {
                all = s.filter(Files::isRegularFile).map(root::relativize).filter(RepositoryReferencesTest::notBuildOrHidden).toList();
            }
        }
        return all.stream().filter(p -> {
            String n = p.getFileName().toString();
            int dot = n.lastIndexOf('.');
            return dot > 0 && TEXT.contains(n.substring(dot + 1)) && Files.isRegularFile(root.resolve(p));
        }).toList();
    }

    private static boolean notBuildOrHidden(Path relative) {
        for (Path part : relative.getParent() == null ? Path.of("") : relative.getParent()) {
            String n = part.toString();
            if (n.equals("target") || n.startsWith(".")) {
                return false;
            }
        }
        return true;
    }

    private static List<Path> gitFiles(Path root) throws IOException, InterruptedException {
        Process git;
        try {
            git = new ProcessBuilder("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard").directory(root.toFile())
                    .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        } catch (IOException e) {
            return null;
        }
        byte[] out;
        try (InputStream in = git.getInputStream()) {
            out = in.readAllBytes();
        }
        if (!git.waitFor(60, TimeUnit.SECONDS) || git.exitValue() != 0) {
            return null;
        }
        List<Path> files = new ArrayList<>();
        for (String name : new String(out, StandardCharsets.UTF_8).split("\0")) {
            if (!name.isEmpty()) {
                files.add(Path.of(name));
            }
        }
        return files;
    }
}
