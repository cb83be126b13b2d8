package io.saeguard.sidecar.cli;

import io.saeguard.sae.Sae;
import io.saeguard.sae.SaeInputException;
import io.saeguard.sae.engine.DeviceSae;
import io.saeguard.sae.engine.SaeEngine;
import io.saeguard.sae.format.SaeLoader;
import io.saeguard.topics.safetensors.SafetensorsFile;
import io.saeguard.topics.safetensors.SafetensorsWriter;
import io.saeguard.topics.safetensors.Tensor;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code saeguard encode}: runs an SAE over a file of activations. */
@Command(name = "encode", mixinStandardHelpOptions = true,
        description = {"Encodes activations with an SAE on DJL/PyTorch.",
                "Input: safetensors with 'activations' [n, d_in] (F32, F16 or BF16).",
                "Output: safetensors with 'indices' I32 [n, kmax] and 'values' F32 [n, kmax] (padding: index -1, value 0);",
                "--dense adds 'features' F32 [n, d_sae], --reconstruct adds 'reconstruction' F32 [n, d_in]."})
final class EncodeCommand implements Callable<Integer> {
    @Option(names = "--sae", required = true, description = "SAE directory (or Gemma Scope .npz file)")
    Path saePath;

    @Option(names = "--input", required = true, description = "input safetensors file")
    Path input;

    @Option(names = "--output", required = true, description = "output safetensors file")
    Path output;

    @Option(names = "--dense", description = "also write the dense codes 'features' [n, d_sae]")
    boolean dense;

    @Option(names = "--reconstruct", description = "also write 'reconstruction' [n, d_in]")
    boolean reconstruct;

    @Option(names = "--max-active", defaultValue = "256", description = "most active features kept per token for non-TopK SAEs "
            + "(TopK SAEs keep k; default ${DEFAULT-VALUE})")
    int maxActive;

    @Option(names = "--batch", defaultValue = "512", description = "tokens per engine call (default ${DEFAULT-VALUE})")
    int batch;

    @Mixin
    EngineMixin engineOptions;

    @Override
    public Integer call() throws Exception {
        Sae sae = SaeLoader.load(saePath);
        SafetensorsFile in = SafetensorsFile.open(input);
        Tensor acts = in.tensor("activations").orElseThrow(() -> new IllegalArgumentException(input + ": no tensor 'activations' (found: "
                + String.join(", ", in.names()) + ")"));
        if (acts.rank() != 2) {
            throw new IllegalArgumentException(input + ": 'activations' must be [n, d_in], found " + Arrays.toString(acts.shape()));
        }
        int n = Math.toIntExact(acts.dim(0));
        int dIn = Math.toIntExact(acts.dim(1));
        int dSae = sae.config().dSae();
        try (SaeEngine engine = SaeEngine.start(engineOptions.options()); DeviceSae device = engine.load(sae, maxActive)) {
            device.checkWidth(dIn);
            int kmax = device.kmax();
            int[] indices = new int[n * kmax];
            float[] values = new float[n * kmax];
            float[] features = dense ? new float[Math.multiplyExact(n, dSae)] : null;
            float[] recon = reconstruct ? new float[n * dIn] : null;
            float[] chunk = new float[Math.min(batch, n) * dIn];
            int truncated = 0;
            long t0 = System.nanoTime();
            for (int start = 0; start < n; start += batch) {
                int m = Math.min(batch, n - start);
                acts.copyFloats((long) start * dIn, chunk, 0, m * dIn);
                DeviceSae.Padded p;
                try {
                    p = device.encodePadded(chunk, m);
                } catch (SaeInputException e) {
                    throw new IllegalArgumentException(input + ": " + (e.token() >= 0
                            ? e.getMessage().replace("token " + e.token(), "token " + (start + e.token())) : e.getMessage()), e);
                }
                System.arraycopy(p.indices(), 0, indices, start * kmax, m * kmax);
                System.arraycopy(p.values(), 0, values, start * kmax, m * kmax);
                truncated += p.truncatedTokens();
                if (dense || reconstruct) {
                    DeviceSae.Dense d = device.encodeDense(chunk, m, reconstruct);
                    if (dense) {
                        System.arraycopy(d.features(), 0, features, start * dSae, m * dSae);
                    }
                    if (reconstruct) {
                        System.arraycopy(d.reconstruction().orElseThrow(), 0, recon, start * dIn, m * dIn);
                    }
                }
                if (n > batch) {
                    System.err.printf("encoded %d/%d tokens%n", start + m, n);
                }
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            SafetensorsWriter out = new SafetensorsWriter().metadata("sae", saePath.toString())
                    .metadata("architecture", sae.config().architecture().wireName()).metadata("d_sae", Integer.toString(dSae))
                    .metadata("device", engine.deviceLabel())
                    .addI32("indices", new long[] {n, kmax}, indices).addF32("values", new long[] {n, kmax}, values);
            if (dense) {
                out.addF32("features", new long[] {n, dSae}, features);
            }
            if (reconstruct) {
                out.addF32("reconstruction", new long[] {n, dIn}, recon);
            }
            out.writeTo(output);
            System.err.printf("encoded %d tokens with %s (%s, d_in=%d, d_sae=%d) on %s in %.3f s (%.0f tokens/s)%s%n", n, saePath,
                    sae.config().architecture().wireName(), dIn, dSae, engine.deviceLabel(), seconds, n / seconds,
                    truncated > 0 ? "; " + truncated + " tokens had more than --max-active " + maxActive + " active features" : "");
        }
        return 0;
    }
}
