package io.saeguard.sidecar.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.pytorch.jni.JniUtils;
import io.saeguard.sae.PythonSaeFixtures;
import io.saeguard.sae.Sae;
import io.saeguard.sae.engine.DeviceSae;
import io.saeguard.sae.engine.DeviceSpec;
import io.saeguard.sae.engine.EngineOptions;
import io.saeguard.sae.engine.SaeEngine;
import io.saeguard.sae.format.SaeLoader;
import io.saeguard.topics.codes.SparseCodes;
import io.saeguard.topics.safetensors.SafetensorsFile;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The metrics' full encodes on their own thread and engine: the same codes as the engine thread's, a bounded queue, an orderly close. */
class MetricsEncoderIT {
    private static final String SAE = "sae";
    // The in-process engine options every IT of this JVM uses (DJL's threads are fixed per process).
    private static final EngineOptions OPTIONS = new EngineOptions(DeviceSpec.CPU, EngineOptions.defaultCacheDir(), 1, 1, false);

    @TempDir
    Path dir;
    private Sae sae;
    private float[] inputs;

    @BeforeEach
    void sae() throws Exception {
        PythonSaeFixtures.assumeAvailable();
        Path c = PythonSaeFixtures.generate(dir.resolve("case"), 77, "--format", "saelens", "--arch", "jumprelu", "--tokens", "16");
        sae = SaeLoader.load(c.resolve("sae"));
        inputs = SafetensorsFile.open(c.resolve("input.safetensors")).tensor("activations").orElseThrow().toFloatArray();
    }

    @Test
    void aJobRunsOnTheMetricsThreadAndEncodesAsTheEngineThreadDoes() throws Exception {
        SparseCodes reference;
        try (SaeEngine engine = SaeEngine.start(OPTIONS); DeviceSae own = engine.load(sae, 64)) {
            reference = own.encode(SAE, inputs, 16, true);
        }
        // The process-wide libtorch thread count new threads start from raised to 2 (this JVM's engines use 1) for the
        // metrics thread's life, so that its own count shows whether it limited itself; put back at the end. Set from
        // throwaway threads: setting it also sets the calling thread's own count.
        onThrowawayThread(() -> JniUtils.setNumThreads(2));
        try (MetricsEncoder m = MetricsEncoder.start(OPTIONS, true, Map.of(SAE, sae), Map.of(SAE, 64), Set.of(), Duration.ofMinutes(2)).orElseThrow()) {
            CompletableFuture<String> thread = new CompletableFuture<>();
            CompletableFuture<SparseCodes> codes = new CompletableFuture<>();
            assertThat(m.submit(SAE, s -> {
                thread.complete(Thread.currentThread().getName());
                try {
                    codes.complete(s.encode(SAE, inputs, 16, true));
                } catch (Exception e) {
                    codes.completeExceptionally(e);
                }
            })).isTrue();

            assertThat(thread.get(30, TimeUnit.SECONDS)).isEqualTo("saeguard-metrics-encode");
            assertThat(m.threadsOfItsThread()).as("libtorch threads of the metrics thread").isEqualTo(MetricsEncoder.THREADS);
            SparseCodes off = codes.get(30, TimeUnit.SECONDS);
            for (int t = 0; t < 16; t++) {
                assertThat(off.activeCount(t)).as("token %d", t).isEqualTo(reference.activeCount(t));
            }
            assertThat(off).isEqualTo(reference);
        } finally {
            onThrowawayThread(() -> JniUtils.setNumThreads(OPTIONS.intraOpThreads()));
        }
    }

    @Test
    void aBf16SampleIsEncodedInBf16WhileTheFvuRowsStayF32() throws Exception {
        // Given: the engine thread's F32 codes
        SparseCodes reference;
        try (SaeEngine engine = SaeEngine.start(OPTIONS); DeviceSae own = engine.load(sae, 64)) {
            reference = own.encode(SAE, inputs, 16, true);
        }
        try (MetricsEncoder m = MetricsEncoder.start(OPTIONS, true, Map.of(SAE, sae), Map.of(SAE, 64), Set.of(SAE),
                Duration.ofMinutes(2)).orElseThrow()) {
            // When
            CompletableFuture<SparseCodes> sampled = new CompletableFuture<>();
            CompletableFuture<SparseCodes> fvu = new CompletableFuture<>();
            assertThat(m.submitSample(SAE, s -> encodeInto(s, sampled))).isTrue();
            assertThat(m.submit(SAE, s -> encodeInto(s, fvu))).isTrue();

            // Then: the FVU's engine is the F32 one, bit for bit
            assertThat(m.samplePrecision()).isEqualTo("bf16");
            assertThat(fvu.get(30, TimeUnit.SECONDS)).isEqualTo(reference);
            // and the sample's carries BF16's error: the input rounded to 8 significant bits moves every code a little
            // (at most ~1 % of the token's largest code; Bf16EncodeIT bounds it against float64), and a few features
            // at their threshold or at the max_active cut flip
            SparseCodes bf16 = sampled.get(30, TimeUnit.SECONDS);
            float[] f32 = reference.toDense();
            float[] half = bf16.toDense();
            int dSae = reference.dSae();
            double worst = 0;
            int moved = 0;
            int flipped = 0;
            for (int t = 0; t < 16; t++) {
                float largest = 0;
                for (int f = 0; f < dSae; f++) {
                    largest = Math.max(largest, Math.abs(f32[t * dSae + f]));
                }
                for (int f = 0; f < dSae; f++) {
                    float a = f32[t * dSae + f];
                    float b = half[t * dSae + f];
                    if ((a == 0) != (b == 0)) {
                        flipped++;
                    } else if (a != b) {
                        moved++;
                        worst = Math.max(worst, Math.abs(a - b) / largest);
                    }
                }
            }
            assertThat(moved).as("codes that BF16 moved").isPositive();
            assertThat(worst).as("largest change of a code active in both / the token's largest code").isLessThan(0.02);
            assertThat(flipped).as("features active in one encode only").isLessThanOrEqualTo(reference.nonZeros() / 20);
        }
    }

    @Test
    void aBf16SampleThatCannotBeSetUpLeavesTheSampleInF32AndTheEncoderRunning() throws Exception {
        // Given a BF16 sample asked for an SAE the encoder was not given (its set-up fails on the thread)
        try (MetricsEncoder m = MetricsEncoder.start(OPTIONS, true, Map.of(SAE, sae), Map.of(SAE, 64), Set.of(SAE, "missing"),
                Duration.ofMinutes(2)).orElseThrow()) {
            // When a sample job runs
            CompletableFuture<SparseCodes> sampled = new CompletableFuture<>();
            assertThat(m.submitSample(SAE, s -> encodeInto(s, sampled))).isTrue();

            // Then it ran on the F32 engine: the encoder started, in F32
            assertThat(sampled.get(30, TimeUnit.SECONDS).tokens()).isEqualTo(16);
            assertThat(m.samplePrecision()).isEqualTo("f32");
        }
    }

    private void encodeInto(DeviceSae s, CompletableFuture<SparseCodes> codes) {
        try {
            codes.complete(s.encode(SAE, inputs, 16, true));
        } catch (Exception e) {
            codes.completeExceptionally(e);
        }
    }

    private static void onThrowawayThread(Runnable r) throws InterruptedException {
        Thread t = new Thread(r);
        t.start();
        t.join(30_000);
    }

    @Test
    void whenTheQueueIsFullSubmitSaysNoAndCloseStillRunsWhatWasQueued() throws Exception {
        MetricsEncoder m = MetricsEncoder.start(OPTIONS, true, Map.of(SAE, sae), Map.of(SAE, 64), Set.of(), Duration.ofMinutes(2)).orElseThrow();
        CountDownLatch release = new CountDownLatch(1);
        CountDownLatch running = new CountDownLatch(1);
        List<Integer> ran = Collections.synchronizedList(new ArrayList<>());
        assertThat(m.submit(SAE, s -> {
            running.countDown();
            try {
                release.await(30, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            ran.add(0);
        })).isTrue();
        assertThat(running.await(30, TimeUnit.SECONDS)).isTrue();
        for (int i = 1; i <= MetricsEncoder.QUEUE; i++) {
            int n = i;
            assertThat(m.submit(SAE, s -> ran.add(n))).as("job %d waits", i).isTrue();
        }

        assertThat(m.submit(SAE, s -> ran.add(-1))).as("one job running and %d waiting: the next is refused", MetricsEncoder.QUEUE).isFalse();

        release.countDown();
        m.close();
        assertThat(ran).containsExactly(0, 1, 2);
    }

    @Test
    void aFailingJobLeavesTheThreadAndItsEngineUsable() throws Exception {
        try (MetricsEncoder m = MetricsEncoder.start(OPTIONS, true, Map.of(SAE, sae), Map.of(SAE, 64), Set.of(), Duration.ofMinutes(2)).orElseThrow()) {
            assertThat(m.submit(SAE, s -> {
                throw new IllegalStateException("boom");
            })).isTrue();
            CompletableFuture<SparseCodes> codes = new CompletableFuture<>();
            m.submit(SAE, s -> {
                try {
                    codes.complete(s.encode(SAE, inputs, 16, true));
                } catch (Exception e) {
                    codes.completeExceptionally(e);
                }
            });
            assertThat(codes.get(30, TimeUnit.SECONDS).tokens()).isEqualTo(16);
        }
    }

    @Test
    void offTheCpuThereIsNoMetricsEncoder() throws Exception {
        assertThat(MetricsEncoder.start(OPTIONS, false, Map.of(SAE, sae), Map.of(SAE, 64), Set.of(), Duration.ofMinutes(2))).isEmpty();
    }
}
