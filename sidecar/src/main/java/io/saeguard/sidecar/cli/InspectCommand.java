package io.saeguard.sidecar.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.saeguard.sae.ComposedSae;
import io.saeguard.sae.Sae;
import io.saeguard.sae.SaeConfig;
import io.saeguard.sae.SingleSae;
import io.saeguard.sae.Weight;
import io.saeguard.sae.format.SaeLoader;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code saeguard inspect}: what an SAE directory holds, as JSON. */
@Command(name = "inspect", mixinStandardHelpOptions = true,
        description = {"Prints what an SAE holds and the checksums of its files, as JSON.",
                "Format, architecture, sizes, dtype, hook, k or threshold summary, normalisation, and each file's "
                        + "sha256 (sparsity.safetensors included) with one over them all.",
                "Loads no engine."})
final class InspectCommand implements Callable<Integer> {
    @Option(names = "--sae", required = true, description = "SAE directory (or Gemma Scope .npz file)")
    Path path;

    @Override
    public Integer call() throws Exception {
        Sae sae = SaeLoader.load(path);
        ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        System.out.println(json.writeValueAsString(describe(sae, json)));
        return 0;
    }

    static ObjectNode describe(Sae sae, ObjectMapper json) throws IOException {
        SaeConfig c = sae.config();
        ObjectNode o = json.createObjectNode();
        o.put("path", c.path().toString());
        o.put("format", c.format().wireName());
        o.put("architecture", c.architecture().wireName());
        o.put("d_in", c.dIn());
        o.put("d_sae", c.dSae());
        o.put("dtype", c.storedDtype());
        o.put("hook", c.hook().orElse(null));
        o.put("model", c.model().orElse(null));
        if (c.k().isPresent()) {
            o.put("k", c.k().getAsInt());
        }
        if (sae instanceof SingleSae s) {
            s.threshold().ifPresent(t -> o.set("threshold", summary(t, json)));
        }
        o.put("normalization", c.normalization().wireName());
        if (c.inputScale() != 1 || c.outputScale() != 1) {
            o.put("input_scale", c.inputScale());
            o.put("output_scale", c.outputScale());
        }
        o.put("apply_b_dec_to_input", c.applyBDecToInput());
        o.put("rescale_acts_by_decoder_norm", c.rescaleActsByDecoderNorm());
        o.put("baseline_density", sae.baselineDensity().isPresent());
        if (sae instanceof ComposedSae composed) {
            o.put("residual_input", composed.residualInput().name().toLowerCase(java.util.Locale.ROOT));
            o.set("base", describe(composed.base(), json));
            o.set("residual", describe(composed.residual(), json));
        }
        ArrayNode files = o.putArray("files");
        MessageDigest all = sha256();
        for (Path f : c.files()) {
            MessageDigest one = sha256();
            byte[] buf = new byte[1 << 20];
            try (InputStream in = Files.newInputStream(f)) {
                for (int n; (n = in.read(buf)) > 0; ) {
                    one.update(buf, 0, n);
                    all.update(buf, 0, n);
                }
            }
            files.addObject().put("path", f.toString()).put("bytes", Files.size(f)).put("sha256", HexFormat.of().formatHex(one.digest()));
        }
        o.put("weights_sha256", HexFormat.of().formatHex(all.digest()));
        return o;
    }

    private static ObjectNode summary(Weight t, ObjectMapper json) {
        double min = Double.MAX_VALUE;
        double max = -Double.MAX_VALUE;
        double sum = 0;
        long n = t.elementCount();
        for (long i = 0; i < n; i++) {
            double v = t.get(i);
            min = Math.min(min, v);
            max = Math.max(max, v);
            sum += v;
        }
        return json.createObjectNode().put("count", n).put("min", min).put("mean", sum / n).put("max", max);
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
