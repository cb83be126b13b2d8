package io.saeguard.sidecar.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.saeguard.sae.Sae;
import io.saeguard.sae.SingleSae;
import io.saeguard.sae.engine.DeviceSae;
import io.saeguard.sae.engine.EngineOptions;
import io.saeguard.sae.engine.SaeEngine;
import io.saeguard.sae.format.SaeLoader;
import io.saeguard.sae.format.SaeWriter;
import io.saeguard.sae.train.ActivationSource;
import io.saeguard.sae.train.ReconstructionQuality;
import io.saeguard.sae.train.ResidualActivationSource;
import io.saeguard.sae.train.SaeEvaluation;
import io.saeguard.sae.train.SafetensorsActivationSource;
import io.saeguard.sae.train.TopKTrainer;
import io.saeguard.sae.train.TrainingListener;
import io.saeguard.sae.train.TrainingOptions;
import io.saeguard.sae.train.TrainingProgress;
import io.saeguard.sae.train.TrainingResult;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code saeguard train}: trains a TopK SAE (or a residual SAE on a base's error) from activation files. */
@Command(name = "train", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Trains a TopK SAE with DJL autograd (PyTorch engine); writes SAELens format.",
                "",
                "Input: a safetensors file, or a directory of them, holding 'activations'",
                "[n, d_in] (F32, F16 or BF16); other tensors are ignored, so the files",
                "'saeguard activations' writes, and activation records, work as they are.",
                "Loss: FVU + alpha * AuxK (the top dead latents reconstruct the error);",
                "decoder rows at unit norm; Adam. Progress goes to stderr.",
                "Output: OUT/cfg.json, sae_weights.safetensors, sparsity.safetensors (log10",
                "firing density on the training rows), saeguard-training.json (options and",
                "results). With --residual-of BASE: a TopK SAE without decoder bias trained",
                "on x - BASE(x) in OUT/residual/, and OUT/saeguard-composed.json, which",
                "loads as BASE + residual.",
                ""})
final class TrainCommand implements Callable<Integer> {
    @Option(names = "--input", paramLabel = "PATH", required = true, description = "activation file or directory of *.safetensors files")
    Path input;

    @Option(names = "--out", paramLabel = "DIR", required = true, description = "output directory (must not exist or be empty)")
    Path out;

    @Option(names = "--d-sae", paramLabel = "N", required = true, description = "dictionary size")
    int dSae;

    @Option(names = "--k", paramLabel = "K", required = true, description = "active latents per token")
    int k;

    @ArgGroup(exclusive = true)
    Length length;

    static final class Length {
        @Option(names = "--steps", paramLabel = "N", description = "optimiser steps")
        Long steps;

        @Option(names = "--epochs", paramLabel = "N", description = "passes over the training rows (default 1)")
        Integer epochs;
    }

    @Option(names = "--batch", paramLabel = "ROWS", defaultValue = "1024", description = "rows per step (default ${DEFAULT-VALUE})")
    int batch;

    @Option(names = "--lr", paramLabel = "LR", description = "Adam learning rate (default 2e-4 / sqrt(d_sae / 16384))")
    Double lr;

    @Option(names = "--seed", paramLabel = "SEED", defaultValue = "42", description = "seed of the initial weights and the row order (default ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--holdout", paramLabel = "FRACTION", defaultValue = "0",
            description = "fraction of rows (the last ones, in file order) held out and reported at the end (default: none)")
    double holdout;

    @Option(names = "--residual-of", paramLabel = "BASE",
            description = "train a residual SAE on BASE's reconstruction error and write BASE + residual as a composed SAE")
    Path residualOf;

    @Option(names = "--copy-base", description = "with --residual-of: copy BASE into OUT/base (default: refer to it by relative path)")
    boolean copyBase;

    @Option(names = "--auxk-alpha", paramLabel = "ALPHA", defaultValue = "0.03125", description = "weight of the AuxK loss, 0 turns it off (default 1/32)")
    double auxKAlpha;

    @Option(names = "--auxk", paramLabel = "K_AUX", description = "dead latents used by AuxK (default d_in / 2)")
    Integer auxK;

    @Option(names = "--dead-after", paramLabel = "ROWS",
            description = "a latent is dead after this many rows without firing (default: 10M, or a 20th of the run if fewer)")
    Long deadAfter;

    @Option(names = "--model-name", paramLabel = "NAME", description = "model name written to cfg.json's metadata")
    String modelName;

    @Option(names = "--hook", paramLabel = "NAME", description = "hook name written to cfg.json's metadata (e.g. blocks.6.hook_resid_post)")
    String hook;

    @Mixin
    EngineMixin engineOptions;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        checkOutput();
        if (!(holdout >= 0 && holdout < 1)) {
            throw new IllegalArgumentException("--holdout must be in [0, 1), got " + holdout);
        }
        if (copyBase && residualOf == null) {
            throw new IllegalArgumentException("--copy-base needs --residual-of");
        }
        TrainingOptions options = options();
        EngineOptions engine = engineOptions.options();
        try (SafetensorsActivationSource all = SafetensorsActivationSource.open(input)) {
            ActivationSource train = all;
            Optional<ActivationSource> heldOut = Optional.empty();
            if (holdout > 0) {
                SafetensorsActivationSource.Split split = all.holdOut(holdout);
                train = split.train();
                heldOut = Optional.of(split.heldOut());
            }
            System.err.printf("training on %s: %d rows of d_in %d%s%n", train.describe(), train.rows().orElse(-1), all.dIn(),
                    heldOut.map(h -> ", " + h.rows().orElse(-1) + " held out").orElse(""));
            return residualOf == null ? trainSingle(train, heldOut, options, engine) : trainResidual(train, heldOut, options, engine);
        }
    }

    private void checkOutput() throws IOException {
        if (Files.exists(out) && !Files.isDirectory(out)) {
            throw new IllegalArgumentException(out + " exists and is not a directory");
        }
        if (Files.isDirectory(out)) {
            try (Stream<Path> s = Files.list(out)) {
                if (s.findAny().isPresent()) {
                    throw new IllegalArgumentException(out + " is not empty; choose a new --out directory");
                }
            }
        }
    }

    private TrainingOptions options() {
        TrainingOptions o = TrainingOptions.defaults(dSae, k).withBatchSize(batch).withSeed(seed)
                .withAuxK(auxKAlpha, auxK == null ? OptionalInt.empty() : OptionalInt.of(auxK));
        if (length != null && length.steps != null) {
            o = o.withSteps(length.steps);
        } else if (length != null && length.epochs != null) {
            o = o.withEpochs(length.epochs);
        }
        if (lr != null) {
            o = o.withLearningRate(lr);
        }
        if (deadAfter != null) {
            o = o.withDeadAfterTokens(deadAfter);
        }
        if (residualOf != null) {
            // SAE Boost's residual SAE has no decoder bias (docs/algorithms.md#composed-saes): its features carry the domain's error alone.
            o = o.withDecoderBias(false);
        }
        return o;
    }

    private int trainSingle(ActivationSource train, Optional<ActivationSource> heldOut, TrainingOptions options, EngineOptions engine)
            throws Exception {
        TrainingResult r;
        try (TopKTrainer trainer = TopKTrainer.create(engine, train.dIn(), options)) {
            r = trainer.train(train, Optional.empty(), new ProgressPrinter(System.err));
            SaeWriter.writeTopK(out, trainer.weights(), Optional.of(r.log10Density()), Optional.ofNullable(modelName), Optional.ofNullable(hook));
        }
        Optional<ReconstructionQuality> held = Optional.empty();
        if (heldOut.isPresent()) {
            System.err.println("measuring the written SAE on the held-out rows");
            try (SaeEngine runtime = SaeEngine.start(engine); DeviceSae sae = runtime.load(SaeLoader.load(out), k)) {
                held = Optional.of(SaeEvaluation.evaluate(sae, heldOut.get(), batch));
            }
        }
        ObjectNode report = report(options, train, r);
        held.ifPresent(q -> report.set("held_out", quality(q)));
        writeReport(out, report);
        summary(r, options, train.dIn());
        held.ifPresent(q -> System.err.printf("  held-out rows: FVU %.4f, L0 %.2f, %d latents never fired (runtime, from the written files)%n",
                q.fvu(), q.l0(), q.deadLatents()));
        System.err.println("wrote " + out + " (SAELens: cfg.json, sae_weights.safetensors, sparsity.safetensors; saeguard-training.json)");
        return 0;
    }

    private int trainResidual(ActivationSource train, Optional<ActivationSource> heldOut, TrainingOptions options, EngineOptions engine)
            throws Exception {
        Sae base = SaeLoader.load(residualOf);
        if (!(base instanceof SingleSae)) {
            throw new IllegalArgumentException(residualOf + " is a composed SAE; --residual-of needs a single SAE");
        }
        Path residualDir = out.resolve("residual");
        TrainingResult r;
        Optional<ReconstructionQuality> baseHeld = Optional.empty();
        Optional<ReconstructionQuality> composedHeld = Optional.empty();
        try (SaeEngine runtime = SaeEngine.start(engine); DeviceSae baseOnDevice = runtime.load(base, base.config().k().orElse(256))) {
            ActivationSource residualTrain = new ResidualActivationSource(train, baseOnDevice);
            try (TopKTrainer trainer = TopKTrainer.create(engine, train.dIn(), options)) {
                r = trainer.train(residualTrain, Optional.empty(), new ProgressPrinter(System.err));
                SaeWriter.writeTopK(residualDir, trainer.weights(), Optional.of(r.log10Density()),
                        Optional.ofNullable(modelName).or(() -> base.config().model()),
                        Optional.ofNullable(hook).or(() -> base.config().hook()));
            }
            String basePath;
            if (copyBase) {
                copyTree(residualOf, out.resolve("base"));
                basePath = "base";
            } else {
                basePath = out.toAbsolutePath().normalize().relativize(residualOf.toAbsolutePath().normalize()).toString();
            }
            SaeWriter.writeComposed(out, basePath, "residual");
            if (heldOut.isPresent()) {
                System.err.println("measuring BASE and the written composed SAE on the held-out rows");
                baseHeld = Optional.of(SaeEvaluation.evaluate(baseOnDevice, heldOut.get(), batch));
                Sae composed = SaeLoader.load(out);
                try (DeviceSae composedOnDevice = runtime.load(composed, composed.config().k().orElse(256))) {
                    composedHeld = Optional.of(SaeEvaluation.evaluate(composedOnDevice, heldOut.get(), batch));
                }
            }
        }
        ObjectNode report = report(options, train, r);
        report.put("residual_of", residualOf.toString());
        baseHeld.ifPresent(q -> report.set("base_held_out", quality(q)));
        composedHeld.ifPresent(q -> report.set("held_out", quality(q)));
        writeReport(out, report);
        summary(r, options, train.dIn());
        if (baseHeld.isPresent() && composedHeld.isPresent()) {
            System.err.printf("  held-out rows: BASE FVU %.4f (L0 %.2f) -> composed FVU %.4f (L0 %.2f)%n", baseHeld.get().fvu(),
                    baseHeld.get().l0(), composedHeld.get().fvu(), composedHeld.get().l0());
        }
        System.err.println("wrote " + out + " (saeguard-composed.json: base " + residualOf + ", residual/ in SAELens format)");
        return 0;
    }

    private void summary(TrainingResult r, TrainingOptions o, int dIn) {
        System.err.printf(Locale.ROOT, "trained %sTopK SAE d_in=%d d_sae=%d k=%d in %.1f s (%d steps, %d rows)%n",
                residualOf == null ? "" : "residual ", dIn, o.dSae(), o.k(), r.seconds(), r.steps(), r.rows());
        System.err.printf(Locale.ROOT, "  training rows%s: FVU %.4f, L0 %.2f, %d latents never fired%n",
                residualOf == null ? "" : " (the residual on BASE's error)", r.train().fvu(), r.train().l0(), r.train().deadLatents());
    }

    private ObjectNode report(TrainingOptions o, ActivationSource train, TrainingResult r) {
        ObjectMapper json = new ObjectMapper();
        ObjectNode n = json.createObjectNode();
        n.put("command", "saeguard " + String.join(" ", spec.commandLine().getParseResult().originalArgs()));
        n.put("input", input.toString());
        n.put("training_rows", train.rows().orElse(-1));
        n.put("d_in", train.dIn());
        n.put("d_sae", o.dSae());
        n.put("k", o.k());
        n.put("batch", o.batchSize());
        n.put("steps", r.steps());
        n.put("rows_seen", r.rows());
        n.put("learning_rate", o.effectiveLearningRate());
        n.put("seed", o.seed());
        n.put("auxk_alpha", o.auxKAlpha());
        n.put("auxk", o.effectiveAuxK(train.dIn()));
        n.put("decoder_bias", o.decoderBias());
        n.put("seconds", r.seconds());
        n.put("final_loss", r.finalLoss());
        n.set("train", quality(r.train()));
        return n;
    }

    private static ObjectNode quality(ReconstructionQuality q) {
        ObjectNode n = new ObjectMapper().createObjectNode();
        n.put("rows", q.rows());
        n.put("fvu", q.fvu());
        n.put("l0", q.l0());
        n.put("latents_never_fired", q.deadLatents());
        return n;
    }

    private static void writeReport(Path dir, ObjectNode report) throws IOException {
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(dir.resolve("saeguard-training.json").toFile(), report);
    }

    private static void copyTree(Path from, Path to) throws IOException {
        if (Files.isRegularFile(from)) {
            Files.createDirectories(to);
            Files.copy(from, to.resolve(from.getFileName().toString().endsWith(".npz") ? "params.npz" : from.getFileName().toString()),
                    StandardCopyOption.REPLACE_EXISTING);
            return;
        }
        try (Stream<Path> s = Files.walk(from)) {
            for (Path p : (Iterable<Path>) s::iterator) {
                Path target = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(target);
                } else {
                    Files.copy(p, target, StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
    }

    /**
     * Progress on stderr: on a terminal one line redrawn at most 5 times a second; otherwise a line
     * per 5 % of the run (or every 10 s when the run's length is unknown).
     */
    static final class ProgressPrinter implements TrainingListener {
        private final PrintStream err;
        private final boolean terminal = System.console() != null;
        private long lastPrint;
        private long lastBucket = -1;
        private boolean redrawn;

        ProgressPrinter(PrintStream err) {
            this.err = err;
        }

        @Override
        public void progress(TrainingProgress p) {
            long now = System.nanoTime();
            boolean done = p.totalSteps().isPresent() && p.step() >= p.totalSteps().getAsLong();
            String line = line(p);
            if (terminal) {
                if (done || now - lastPrint > 200_000_000L) {
                    err.print("\r" + line + "\u001b[K");
                    redrawn = true;
                    lastPrint = now;
                    if (done) {
                        endLine();
                    }
                }
                return;
            }
            long bucket = p.totalSteps().isPresent() ? p.step() * 20 / p.totalSteps().getAsLong() : (now - lastPrint) / 10_000_000_000L;
            if (done || (p.totalSteps().isPresent() ? bucket != lastBucket : bucket > 0)) {
                err.println(line);
                lastBucket = bucket;
                lastPrint = now;
            }
        }

        @Override
        public void phase(String description) {
            endLine();
            err.println(description);
        }

        private void endLine() {
            if (redrawn) {
                err.println();
                redrawn = false;
            }
        }

        static String line(TrainingProgress p) {
            StringBuilder b = new StringBuilder();
            if (p.totalSteps().isPresent()) {
                long total = p.totalSteps().getAsLong();
                int filled = (int) Math.min(20, p.step() * 20 / Math.max(1, total));
                b.append('[').append("#".repeat(filled)).append(".".repeat(20 - filled)).append("] ");
                b.append(String.format(Locale.ROOT, "%3d%% step %d/%d", p.step() * 100 / Math.max(1, total), p.step(), total));
            } else {
                b.append("step ").append(p.step());
            }
            b.append(String.format(Locale.ROOT, "  loss %.4f  FVU %.4f  AuxK %.4f  L0 %.1f  dead %d  %.0f s", p.loss(), p.fvu(), p.auxK(),
                    p.l0(), p.deadLatents(), p.seconds()));
            if (p.totalSteps().isPresent() && p.step() > 0) {
                double eta = p.seconds() / p.step() * (p.totalSteps().getAsLong() - p.step());
                b.append(String.format(Locale.ROOT, "  ETA %.0f s", eta));
            }
            return b.toString();
        }
    }
}
