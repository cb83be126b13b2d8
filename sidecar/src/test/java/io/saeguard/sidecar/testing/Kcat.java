package io.saeguard.sidecar.testing;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Runs Debian's {@code kcat} (librdkafka), an independent non-Java Kafka client, so a test can
 * prove the wire format without trusting our own Java client on both ends.
 */
public final class Kcat {
    private final String bootstrap;

    public Kcat(String bootstrap) {
        this.bootstrap = bootstrap;
    }

    /** Whether {@code kcat} is on the PATH. */
    public static boolean installed() {
        try {
            Process p = new ProcessBuilder("kcat", "-V").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(10, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** Produces the file's bytes as one record with the given key. */
    public void produceFile(String topic, String key, Path file) throws IOException, InterruptedException {
        run(List.of("-P", "-t", topic, "-k", key, file.toString()));
    }

    /**
     * Consumes {@code count} records from the beginning of {@code topic} and returns what kcat
     * printed for the format (kcat's {@code -f}; e.g. {@code %s} is the raw value bytes).
     */
    public byte[] consume(String topic, int count, String format) throws IOException, InterruptedException {
        return run(List.of("-C", "-t", topic, "-o", "beginning", "-c", Integer.toString(count), "-e", "-f", format));
    }

    /** Writes a temp file and produces it. */
    public void produce(String topic, String key, byte[] value, Path dir) throws IOException, InterruptedException {
        Path f = Files.createTempFile(dir, "kcat-", ".bin");
        Files.write(f, value);
        produceFile(topic, key, f);
    }

    private byte[] run(List<String> args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(Arrays.asList("kcat", "-b", bootstrap, "-q"));
        cmd.addAll(args);
        Process p = new ProcessBuilder(cmd).start();
        CompletableFuture<byte[]> err = CompletableFuture.supplyAsync(() -> readAll(p.getErrorStream()));
        byte[] out = readAll(p.getInputStream());
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IOException("kcat timed out: " + cmd);
        }
        if (p.exitValue() != 0) {
            throw new IOException("kcat exited " + p.exitValue() + ": " + cmd + "\n" + new String(err.join(), StandardCharsets.UTF_8));
        }
        return out;
    }

    private static byte[] readAll(InputStream in) {
        try (in; ByteArrayOutputStream out = new ByteArrayOutputStream()) {
            in.transferTo(out);
            return out.toByteArray();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
