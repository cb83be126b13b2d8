package io.saeguard.sidecar.cli;

import io.saeguard.sidecar.eval.LabelledText;
import io.saeguard.sidecar.eval.LabelledTextReader;

import io.saeguard.detectors.select.ExampleSet;
import io.saeguard.detectors.select.TextSelection;
import io.saeguard.sae.engine.DeviceSae;
import io.saeguard.sae.lm.HiddenStateModel;
import io.saeguard.topics.codes.SparseCodes;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Labelled text for {@code saeguard select --data}: JSONL lines {@code {"text": "...", "label": true|false}} (other
 * fields ignored), run through the prompt model and the SAE. Only the tokens the sidecar counts for a prompt event
 * are kept: the tokenizer's special tokens ([CLS], [SEP]) are dropped, as the sidecar never counts them.
 */
final class LabelledTexts {
    private LabelledTexts() {}

    /** Reads every line of every file (eval's reader: a bad line is an error naming {@code file:line}). */
    static List<LabelledText> read(List<Path> files) {
        List<LabelledText> out = new ArrayList<>();
        for (Path file : files) {
            try (LabelledTextReader in = LabelledTextReader.open(file, out.size())) {
                for (Optional<LabelledText> t = in.next(); t.isPresent(); t = in.next()) {
                    out.add(t.get());
                }
            }
        }
        return out;
    }

    /** One class's texts as examples: codes (under {@code saeId}) and activations of their counted tokens. */
    static TextSelection.Examples encode(List<LabelledText> texts, HiddenStateModel lm, DeviceSae sae, String saeId) throws Exception {
        int dModel = lm.dModel();
        sae.checkWidth(dModel);
        List<float[]> rows = new ArrayList<>();
        List<Integer> example = new ArrayList<>();
        int batch = 16;
        long t0 = System.nanoTime();
        for (int from = 0; from < texts.size(); from += batch) {
            List<String> chunk = texts.subList(from, Math.min(texts.size(), from + batch)).stream().map(LabelledText::text).toList();
            List<HiddenStateModel.Result> results = lm.run(chunk);
            for (int i = 0; i < results.size(); i++) {
                HiddenStateModel.Result r = results.get(i);
                int kept = 0;
                for (int t = 0; t < r.tokens(); t++) {
                    if (r.special()[t]) {
                        continue;
                    }
                    float[] row = new float[dModel];
                    System.arraycopy(r.rows(), t * dModel, row, 0, dModel);
                    rows.add(row);
                    example.add(from + i);
                    kept++;
                }
                if (kept == 0) {
                    throw new IllegalArgumentException(texts.get(from + i).file() + ":" + texts.get(from + i).line() + ": the text has no tokens besides special ones");
                }
            }
            System.err.printf("\r%d/%d texts, %d tokens, %.1f s", Math.min(texts.size(), from + batch), texts.size(), rows.size(),
                    (System.nanoTime() - t0) / 1e9);
        }
        System.err.println();
        int n = rows.size();
        float[] x = new float[n * dModel];
        for (int i = 0; i < n; i++) {
            System.arraycopy(rows.get(i), 0, x, i * dModel, dModel);
        }
        SparseCodes codes = encodeCodes(sae, saeId, x, n, dModel);
        ExampleSet set = ExampleSet.ofExamples(codes, example.stream().mapToInt(Integer::intValue).toArray()).withActivations(x, dModel);
        return new TextSelection.Examples(set, Optional.of(texts.stream().map(LabelledText::text).toList()));
    }

    /** {@code x: [n, d_in]} through the SAE in batches of 512. */
    static SparseCodes encodeCodes(DeviceSae device, String saeId, float[] x, int n, int dIn) throws Exception {
        int kmax = device.kmax();
        int[] idx = new int[n * kmax];
        float[] val = new float[n * kmax];
        int batch = 512;
        float[] chunk = new float[batch * dIn];
        for (int start = 0; start < n; start += batch) {
            int m = Math.min(batch, n - start);
            System.arraycopy(x, start * dIn, chunk, 0, m * dIn);
            DeviceSae.Padded p = device.encodePadded(chunk, m);
            System.arraycopy(p.indices(), 0, idx, start * kmax, m * kmax);
            System.arraycopy(p.values(), 0, val, start * kmax, m * kmax);
        }
        return SparseCodes.fromPadded(saeId, device.config().dSae(), n, kmax, idx, val, 0);
    }
}
