package io.saeguard.sidecar.testing;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * This build's fat jar run as a user runs it, {@code java -jar saeguard.jar ...}, in a child JVM:
 * the product's command line, its exit status and its output, with nothing shared with the test's JVM.
 */
public final class SaeguardJar {
    /** A guard against a hung command, not a timing expectation. */
    private static final long COMMAND_TIMEOUT_SECONDS = 180;

    private SaeguardJar() {
    }

    /** The fat jar ({@code -Dsaeguard.jar}, set by the failsafe configuration; built in {@code package}). */
    public static Path path() {
        Path jar = Path.of(System.getProperty("saeguard.jar", "target/saeguard.jar"));
        assertThat(jar).as("the fat jar (./mvnw package builds it)").isRegularFile();
        return jar;
    }

    /**
     * The production fat jar, without the demo's assets ({@code -Dsaeguard.server.jar}, set by the failsafe
     * configuration; built in {@code package} beside {@link #path()}).
     */
    public static Path serverPath() {
        Path jar = Path.of(System.getProperty("saeguard.server.jar", "target/saeguard-server.jar"));
        assertThat(jar).as("the production fat jar (./mvnw package builds it)").isRegularFile();
        return jar;
    }

    /**
     * {@code java -Xmx<maxHeap> -Djava.io.tmpdir=<tmpDir> -jar saeguard.jar <args>} with stdout and
     * stderr going to {@code log}.
     */
    public static ProcessBuilder command(Path tmpDir, String maxHeap, Path log, String... args) {
        return command(path(), tmpDir, maxHeap, log, args);
    }

    /** {@link #command(Path, String, Path, String...)} with another jar ({@link #serverPath()}). */
    public static ProcessBuilder command(Path jar, Path tmpDir, String maxHeap, Path log, String... args) {
        List<String> cmd = new ArrayList<>(List.of(javaBin(), "-Xmx" + maxHeap, "-Djava.io.tmpdir=" + tmpDir, "-jar", jar.toString()));
        cmd.addAll(List.of(args));
        return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
    }

    /** Runs a command to its end and returns its exit status and output; a command that hangs fails the test. */
    public static Completed run(Path tmpDir, Path log, String... args) throws IOException, InterruptedException {
        return run(path(), tmpDir, log, args);
    }

    /** {@link #run(Path, Path, String...)} with another jar ({@link #serverPath()}). */
    public static Completed run(Path jar, Path tmpDir, Path log, String... args) throws IOException, InterruptedException {
        Process p = command(jar, tmpDir, "256m", log, args).start();
        boolean finished = p.waitFor(COMMAND_TIMEOUT_SECONDS, TimeUnit.SECONDS);
        if (!finished) {
            p.destroyForcibly().waitFor();
        }
        String output = Files.readString(log, StandardCharsets.UTF_8);
        assertThat(finished).as("saeguard %s ended; output:%n%s", String.join(" ", args), output).isTrue();
        return new Completed(p.exitValue(), output);
    }

    public static String javaBin() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }

    /** What a finished command left: its exit status and its output (stdout and stderr together). */
    public record Completed(int exitCode, String output) {
    }
}
