package io.saeguard.sidecar.pipeline;

import io.saeguard.sae.Sae;
import io.saeguard.sae.engine.DeviceSae;
import io.saeguard.sae.engine.EngineOptions;
import io.saeguard.sae.engine.SaeEngine;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The metrics' full encodes (the full-code sample of an SAE on the watched-feature encode, the FVU reconstructions) on a
 * thread of their own, {@code saeguard-metrics-encode}, with its own engine, so that the engine thread never holds a
 * decision behind one. A 64-row full encode streams the whole encoder (~50 ms at 2304x16384 on 2 cores) and, on the
 * engine thread, delayed every decision queued behind it: in the pipeline benchmark of 2026-12-07 the sidecar's p99 at
 * 25 % of its saturation was 374 ms against a p50 of 10 ms (bench/README.md, "Metrics off the engine thread").
 *
 * <p>CPU only. There the second engine's SAEs wrap the same weight memory as the engine thread's (nothing is copied;
 * its encoder GEMM is F32 even with {@code engine.cpu_bf16}, whose BF16 copy would be a second copy of W_enc; a BF16
 * sample, below, is that copy, made on purpose). On a GPU
 * a second engine would hold a second copy in device memory, and a GPU's full encode of 64 rows takes about a
 * millisecond, so the engine thread keeps them there. The thread's libtorch ops run on {@value #THREADS} core (the
 * engine thread keeps {@code engine.threads}): a 256-row full encode at 2304x16384 takes ~0.22 s there, so one thread
 * keeps up with the 1 % default sample up to about 100k tokens/s. At most {@value #QUEUE} jobs wait: when the thread falls behind,
 * {@link #submit} says no and the engine thread encodes inline as before, so the sample never shrinks below its
 * fraction.
 *
 * <p>With a BF16 sample ({@code metrics.sample_precision}; by default where the CPU runs BF16 natively) the thread
 * starts a second engine whose encoder GEMM is BF16 and loads there the SAEs whose full-code sample it encodes
 * ({@link #submitSample}): one BF16 copy of {@code W_enc} each. On the 2-core benchmark machine (AVX512-BF16) a 256-row
 * encode at 2304x16384 on one core took 111 ms in BF16 against 252 ms in F32 (JMH {@code EncodeBenchmark}). The FVU
 * reconstructions ({@link #submit}) stay on the F32 engine.
 */
final class MetricsEncoder implements AutoCloseable {
    private static final Logger LOGGER = LoggerFactory.getLogger(MetricsEncoder.class);

    /** libtorch threads of the metrics encoder's thread ({@link SaeEngine#intraOpThreadsOfThisThread(int)}). */
    static final int THREADS = 1;

    /** Jobs that may wait for the thread; one more runs. */
    static final int QUEUE = 2;

    private final ThreadPoolExecutor executor;
    private final Map<String, DeviceSae> loaded = new LinkedHashMap<>(); // touched on the thread only
    private final Map<String, DeviceSae> sampleLoaded = new LinkedHashMap<>(); // BF16 copies for the sample; touched on the thread only
    private SaeEngine engine; // the thread's
    private SaeEngine bf16Engine; // the thread's, with a BF16 sample only
    private volatile String samplePrecision = "f32";

    private MetricsEncoder() {
        this.executor = new ThreadPoolExecutor(1, 1, 0, TimeUnit.SECONDS, new ArrayBlockingQueue<>(QUEUE), r -> {
            Thread t = new Thread(r, "saeguard-metrics-encode");
            t.setDaemon(true);
            return t;
        }, new ThreadPoolExecutor.AbortPolicy());
    }

    /**
     * Starts the thread and loads {@code saes} on its engine (F32), and the SAEs of {@code bf16Sample} once more on an
     * engine whose encoder GEMM is BF16, for their full-code sample; waits for that.
     *
     * @param bf16Sample ids of {@code saes} whose sample is encoded in BF16 (empty: every sample in F32)
     * @return empty when the engine is not on the CPU or nothing is to be loaded: the engine thread then encodes the
     *     metrics' rows itself
     */
    static Optional<MetricsEncoder> start(EngineOptions options, boolean onCpu, Map<String, Sae> saes, Map<String, Integer> maxActive,
            Set<String> bf16Sample, Duration timeout) throws Exception {
        if (!onCpu || saes.isEmpty()) {
            return Optional.empty();
        }
        EngineOptions f32 = new EngineOptions(options.device(), options.cacheDir(), options.intraOpThreads(), options.interOpThreads(),
                options.gpuHalfPrecision(), false, options.gpuBf16());
        MetricsEncoder m = new MetricsEncoder();
        Future<?> started = m.executor.submit(() -> {
            m.engine = SaeEngine.start(f32);
            // One core at most: with the engine thread's intra-op threads a 256-row full encode took every core for
            // ~0.15 s, and the poll thread, broker and the rest of the pipeline waited behind it.
            SaeEngine.intraOpThreadsOfThisThread(THREADS);
            saes.forEach((id, sae) -> m.loaded.put(id, m.engine.load(sae, maxActive.get(id))));
            if (!bf16Sample.isEmpty()) {
                m.startBf16Sample(options, saes, maxActive, bf16Sample);
            }
            return null;
        });
        try {
            started.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException | TimeoutException | InterruptedException e) {
            m.close();
            if (e instanceof InterruptedException) {
                Thread.currentThread().interrupt();
            }
            throw new IllegalStateException("the metrics encoder did not start: " + (e instanceof ExecutionException x ? x.getCause() : e), e);
        }
        LOGGER.atInfo().addKeyValue("saes", saes.keySet()).addKeyValue("bf16Sample", bf16Sample)
                .log("metrics' full encodes run on their own thread");
        return Optional.of(m);
    }

    /**
     * On the thread: the BF16 engine and the sampled SAEs' BF16 copies. A metric must never stop the sidecar, so a
     * failure (e.g. a read-only cache directory where the BF16 module is written) leaves the sample in F32, with a
     * warning.
     */
    private void startBf16Sample(EngineOptions options, Map<String, Sae> saes, Map<String, Integer> maxActive, Set<String> ids) {
        try {
            bf16Engine = SaeEngine.start(new EngineOptions(options.device(), options.cacheDir(), options.intraOpThreads(),
                    options.interOpThreads(), false, true, false));
            for (String id : ids) {
                Sae sae = saes.get(id);
                if (sae == null) {
                    throw new IllegalArgumentException("SAE '" + id + "' is not among the metrics encoder's SAEs " + saes.keySet());
                }
                sampleLoaded.put(id, bf16Engine.load(sae, maxActive.get(id)));
            }
            samplePrecision = "bf16";
        } catch (RuntimeException e) {
            sampleLoaded.values().forEach(DeviceSae::close);
            sampleLoaded.clear();
            if (bf16Engine != null) {
                bf16Engine.close();
                bf16Engine = null;
            }
            LOGGER.atWarn().addKeyValue("saes", ids).log("the full-code sample stays F32: its BF16 encoder could not be set up ({})",
                    e.toString());
        }
    }

    /** The number of libtorch threads the metrics encoder's thread uses (for tests). */
    int threadsOfItsThread() throws Exception {
        return executor.submit(SaeEngine::intraOpThreadsHere).get(10, TimeUnit.SECONDS);
    }

    /** The sample's encoder GEMM: {@code bf16} when a BF16 engine was started for it, else {@code f32}. */
    String samplePrecision() {
        return samplePrecision;
    }

    /**
     * Queues {@code job} to run on the thread with its F32 copy of SAE {@code saeId} (the FVU reconstructions).
     *
     * @return false when {@value #QUEUE} jobs already wait (run it inline then)
     */
    boolean submit(String saeId, Consumer<DeviceSae> job) {
        return submit(saeId, job, false);
    }

    /**
     * Queues a full-code sample's {@code job}: with SAE {@code saeId}'s BF16 copy where it has one, else its F32 copy.
     *
     * @return false when {@value #QUEUE} jobs already wait (run it inline then)
     */
    boolean submitSample(String saeId, Consumer<DeviceSae> job) {
        return submit(saeId, job, true);
    }

    private boolean submit(String saeId, Consumer<DeviceSae> job, boolean sample) {
        try {
            executor.execute(() -> {
                DeviceSae sae = sample ? sampleLoaded.getOrDefault(saeId, loaded.get(saeId)) : loaded.get(saeId);
                try {
                    if (sae != null) {
                        job.accept(sae);
                    }
                } catch (RuntimeException e) { // a metric, never a decision; and the thread must live on: the engine is confined to it
                    LOGGER.atWarn().addKeyValue("sae", saeId).log("a metrics encode failed: {}", e.toString());
                }
            });
            return true;
        } catch (RejectedExecutionException e) {
            return false;
        }
    }

    /** Finishes the queued jobs (up to 10 s), then frees the thread's engine. */
    @Override
    public void close() {
        try {
            // put, not execute: the queue may be full, and the engine must close after the jobs before it, on the thread
            executor.getQueue().put(() -> {
                loaded.values().forEach(DeviceSae::close);
                loaded.clear();
                sampleLoaded.values().forEach(DeviceSae::close);
                sampleLoaded.clear();
                if (bf16Engine != null) {
                    bf16Engine.close();
                }
                if (engine != null) {
                    engine.close();
                }
            });
            executor.shutdown();
            if (!executor.awaitTermination(10, TimeUnit.SECONDS)) {
                LOGGER.atWarn().log("the metrics encoder did not finish its queued jobs in 10 s");
                executor.shutdownNow();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            executor.shutdownNow();
        }
    }
}
