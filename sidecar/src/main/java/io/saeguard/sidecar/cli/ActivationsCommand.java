package io.saeguard.sidecar.cli;

import io.saeguard.sae.engine.DjlRuntime;
import io.saeguard.sae.lm.HiddenStateModel;
import io.saeguard.topics.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * Texts → per-token hidden states of the prompt model, written as an activation file that
 * {@code saeguard train} and {@code saeguard select} read: {@code activations} [tokens, d_model]
 * F32, {@code request} I32 [tokens] (which text each token belongs to), {@code token_ids} I32.
 */
@Command(name = "activations", mixinStandardHelpOptions = true,
        description = {"Runs texts through the prompt model and writes their per-token hidden states.",
                "Output: safetensors with 'activations', 'request' grouping tokens by text, and 'token_ids', "
                        + "the input of 'saeguard train' and 'saeguard select'.",
                "Texts: one per line (--format lines) or fortune(6) files with '%%' lines between entries (--format fortune)."})
final class ActivationsCommand implements Callable<Integer> {
    @Option(names = "--texts", required = true, arity = "1..*", description = "text files")
    List<Path> texts;

    @Option(names = "--format", defaultValue = "lines", description = "lines | fortune (default ${DEFAULT-VALUE})")
    String format;

    @Option(names = "--out", required = true, description = "safetensors file to write")
    Path out;

    @Option(names = "--model", defaultValue = HiddenStateModel.BUILTIN_MINILM,
            description = "builtin:all-minilm-l6-v2, a .onnx or a TorchScript .pt file (default ${DEFAULT-VALUE})")
    String model;

    @Option(names = "--tokenizer", description = "the model's tokenizer.json (not needed for the built-in model)")
    Path tokenizer;

    @Option(names = "--max-tokens", defaultValue = "128", description = "tokens kept per text (default ${DEFAULT-VALUE})")
    int maxTokens;

    @Option(names = "--split", defaultValue = "all",
            description = "all | train (each file's first --train-fraction of texts) | held (the rest) (default ${DEFAULT-VALUE})")
    String split;

    @Option(names = "--train-fraction", defaultValue = "0.8", description = "(default ${DEFAULT-VALUE})")
    double trainFraction;

    @Option(names = "--limit-per-file", description = "at most this many texts from each file (after --split)")
    Integer limitPerFile;

    @Option(names = "--limit", description = "at most this many texts in all")
    Integer limit;

    @Option(names = "--no-special", description = "leave out special tokens ([CLS], [SEP]) from the written rows")
    boolean noSpecial;

    @Mixin
    EngineMixin engineOptions;

    @Override
    public Integer call() throws Exception {
        List<String> chosen = new ArrayList<>();
        for (Path p : texts) {
            List<String> mine = split(read(p, format), split, trainFraction);
            chosen.addAll(mine.subList(0, Math.min(mine.size(), limitPerFile == null ? Integer.MAX_VALUE : limitPerFile)));
        }
        if (limit != null && chosen.size() > limit) {
            chosen = new ArrayList<>(chosen.subList(0, limit));
        }
        if (chosen.isEmpty()) {
            throw new IllegalArgumentException("no texts selected from " + texts);
        }
        DjlRuntime.configure(engineOptions.options());
        List<float[]> rows = new ArrayList<>();
        List<Integer> request = new ArrayList<>();
        List<Integer> ids = new ArrayList<>();
        int dModel;
        long t0 = System.nanoTime();
        try (HiddenStateModel lm = HiddenStateModel.open(model, tokenizer, maxTokens, engineOptions.options().cacheDir())) {
            dModel = lm.dModel();
            int batch = 16;
            for (int from = 0; from < chosen.size(); from += batch) {
                List<HiddenStateModel.Result> results = lm.run(chosen.subList(from, Math.min(chosen.size(), from + batch)));
                for (int i = 0; i < results.size(); i++) {
                    HiddenStateModel.Result r = results.get(i);
                    for (int t = 0; t < r.tokens(); t++) {
                        if (noSpecial && r.charStart()[t] < 0) {
                            continue;
                        }
                        float[] row = new float[dModel];
                        System.arraycopy(r.rows(), t * dModel, row, 0, dModel);
                        rows.add(row);
                        request.add(from + i);
                        ids.add((int) r.ids()[t]);
                    }
                }
                int done = Math.min(chosen.size(), from + batch);
                if (done % 256 < batch || done == chosen.size()) {
                    System.err.printf("\r%d/%d texts, %d tokens, %.1f s", done, chosen.size(), rows.size(), (System.nanoTime() - t0) / 1e9);
                }
            }
        }
        System.err.println();
        float[] flat = new float[rows.size() * dModel];
        for (int i = 0; i < rows.size(); i++) {
            System.arraycopy(rows.get(i), 0, flat, i * dModel, dModel);
        }
        long[] shape = {rows.size(), dModel};
        Files.write(out, new SafetensorsWriter().metadata("model", model).metadata("texts", Integer.toString(chosen.size()))
                .addF32("activations", shape, flat).addI32("request", new long[] {rows.size()}, request.stream().mapToInt(Integer::intValue).toArray())
                .addI32("token_ids", new long[] {rows.size()}, ids.stream().mapToInt(Integer::intValue).toArray()).toBytes());
        System.err.println("wrote " + out + ": " + chosen.size() + " texts, " + rows.size() + " tokens, d_model " + dModel);
        return 0;
    }

    /** The texts of a file: non-blank lines, or fortune(6) entries (between lines holding only '%'), whitespace-normalised. */
    static List<String> read(Path file, String format) throws IOException {
        String content = Files.readString(file, StandardCharsets.UTF_8);
        List<String> out = new ArrayList<>();
        switch (format) {
            case "lines" -> content.lines().map(String::strip).filter(s -> !s.isEmpty()).forEach(out::add);
            case "fortune" -> {
                for (String entry : content.split("(?m)^%\\s*$")) {
                    String t = entry.strip().replaceAll("\\s+", " ");
                    if (!t.isEmpty()) {
                        out.add(t);
                    }
                }
            }
            default -> throw new IllegalArgumentException("--format must be lines or fortune, found '" + format + "'");
        }
        return out;
    }

    /** A file's training part (its first {@code fraction} of texts), held-out part (the rest) or all. */
    static List<String> split(List<String> all, String split, double fraction) {
        if (!(fraction > 0 && fraction < 1)) {
            throw new IllegalArgumentException("--train-fraction must be in (0, 1), found " + fraction);
        }
        int cut = (int) Math.round(all.size() * fraction);
        return switch (split) {
            case "all" -> all;
            case "train" -> all.subList(0, cut);
            case "held" -> all.subList(cut, all.size());
            default -> throw new IllegalArgumentException("--split must be all, train or held, found '" + split + "'");
        };
    }
}
