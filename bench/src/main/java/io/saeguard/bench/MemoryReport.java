package io.saeguard.bench;

import io.saeguard.sae.Sae;
import io.saeguard.sae.SaeFormatException;
import io.saeguard.sae.SaeInputException;
import io.saeguard.sae.engine.DeviceSae;
import io.saeguard.sae.engine.DeviceSpec;
import io.saeguard.sae.engine.EngineOptions;
import io.saeguard.sae.engine.SaeEngine;
import io.saeguard.sae.format.SaeLoader;
import io.saeguard.topics.codes.SparseCodes;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;

/**
 * Shows where a large SAE's weights live: writes a SAELens-format F32 SAE (default 4096×65536,
 * ≈ 2 GiB) to a temporary directory, loads it with {@link SaeLoader}, uploads it to a CPU
 * {@link SaeEngine} and encodes one batch, printing heap, buffer pools and resident memory after
 * each step. Expected: the loader memory-maps the file (mapped pool ≈ file size, heap flat), the CPU
 * upload wraps those pages without copying (RssAnon flat), and the first encode faults the
 * {@code W_enc} half of the file into the process once (RssFile grows by its size, RssAnon does
 * not); nothing is duplicated on the heap.
 *
 * <p>Usage: {@code MemoryReport [d_inxd_sae] [tokens] [f32|bf16]} (bf16: {@code engine.cpu_bf16}); run with a heap far smaller than the
 * weights (memory.sh uses {@code -Xmx512m}) to make the point.
 */
public final class MemoryReport {
    private MemoryReport() {
    }

    public static void main(String[] args) throws IOException, SaeFormatException, SaeInputException {
        SaeShape shape = SaeShape.parse(args.length > 0 ? args[0] : "4096x65536");
        int tokens = args.length > 1 ? Integer.parseInt(args[1]) : 64;
        String gemm = args.length > 2 ? args[2] : "f32";
        if (!gemm.equals("f32") && !gemm.equals("bf16")) {
            throw new IllegalArgumentException("the third argument is the encoder GEMM, f32 or bf16 (engine.cpu_bf16), found " + gemm);
        }
        List<MemorySnapshot> steps = new ArrayList<>();
        Path dir = Files.createTempDirectory("saeguard-memory-");
        try (SaeEngine engine = SaeEngine.start(new EngineOptions(DeviceSpec.CPU, EngineOptions.defaultCacheDir(),
                Runtime.getRuntime().availableProcessors(), 1, false, gemm.equals("bf16")))) {
            steps.add(MemorySnapshot.take("engine started (libtorch loaded)"));

            SyntheticJumpRelu synthetic = new SyntheticJumpRelu(shape, 42);
            long t0 = System.nanoTime();
            SaeLensWriter.write(synthetic, dir);
            long file = Files.size(dir.resolve("sae_weights.safetensors"));
            System.out.printf(Locale.ROOT, "wrote %s (%,d bytes) in %.1f s%n", dir.resolve("sae_weights.safetensors"), file,
                    (System.nanoTime() - t0) / 1e9);
            steps.add(MemorySnapshot.take("SAE written to a temp dir"));

            t0 = System.nanoTime();
            Sae sae = SaeLoader.load(dir);
            System.out.printf(Locale.ROOT, "SaeLoader.load: %.2f s%n", (System.nanoTime() - t0) / 1e9);
            steps.add(MemorySnapshot.take("after SaeLoader.load"));

            t0 = System.nanoTime();
            try (DeviceSae deviceSae = engine.load(sae, 64)) {
                System.out.printf(Locale.ROOT, "engine.load: %.2f s%n", (System.nanoTime() - t0) / 1e9);
                steps.add(MemorySnapshot.take("after engine.load (upload to cpu)"));

                float[] x = synthetic.input(tokens, 7);
                t0 = System.nanoTime();
                SparseCodes codes = deviceSae.encode("memory-report", x, tokens);
                System.out.printf(Locale.ROOT, "first encode of %d tokens: %.2f s, %d non-zeros kept%n", tokens,
                        (System.nanoTime() - t0) / 1e9, codes.nonZeros());
                steps.add(MemorySnapshot.take("after one encode (" + tokens + " tokens)"));
            }
        } finally {
            deleteRecursively(dir);
        }

        System.out.printf(Locale.ROOT, "%nSAE %s F32, encoder GEMM %s, sae_weights.safetensors %,.0f MiB (W_enc and W_dec %,.0f MiB each), "
                + "JVM max heap %,.0f MiB%n%n", shape, gemm, (8.0 * shape.dIn() * shape.dSae() + 4.0 * (2 * shape.dSae() + shape.dIn())) / 1048576.0,
                4.0 * shape.dIn() * shape.dSae() / 1048576.0, Runtime.getRuntime().maxMemory() / 1048576.0);
        System.out.println(MemorySnapshot.tableHeader());
        for (MemorySnapshot s : steps) {
            System.out.println(s.tableRow());
        }
    }

    private static void deleteRecursively(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }
}
