package io.saeguard.sidecar.pipeline;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.prometheus.metrics.model.snapshots.HistogramSnapshot;
import io.saeguard.detectors.DetectorDefinition;
import io.saeguard.detectors.DetectorDefinitions;
import io.saeguard.sae.PythonSaeFixtures;
import io.saeguard.sae.Sae;
import io.saeguard.sae.engine.DeviceSpec;
import io.saeguard.sae.engine.EngineOptions;
import io.saeguard.sae.format.SaeLoader;
import io.saeguard.sidecar.config.ConfigLoader;
import io.saeguard.sidecar.metrics.Metrics;
import io.saeguard.topics.activation.ActivationCodec;
import io.saeguard.topics.events.Action;
import io.saeguard.topics.events.Decision;
import io.saeguard.topics.events.EventCodec;
import io.saeguard.topics.safetensors.DType;
import io.saeguard.topics.safetensors.SafetensorsFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.MockProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.utils.Time;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The engine thread on its own: a real SAE encoded by DJL on the CPU, real detectors, outputs to a
 * {@link MockProducer} behind the at-least-once sink (no broker). What it checks is the engine's loop logic: HTTP
 * checks joining the current batch, the explicit detector-replacement task and its ordering, refusals, and stale work.
 */
class EngineLoopIT {
    private static final EventCodec CODEC = new EventCodec();
    private static final String SAE = "s";

    @TempDir
    Path dir;

    private final MockProducer<String, byte[]> producer = new MockProducer<>(true, null, new StringSerializer(), new ByteArraySerializer());
    private final Generation generation = new Generation();
    private Metrics metrics;
    private EngineLoop engine;
    private float[] inputs;
    private float[] features;
    private int best;
    private float threshold;
    private Map<String, Sae> saes;
    private static final int D_IN = 64;
    private static final int D_SAE = 256;

    @BeforeEach
    void startEngine() throws Exception {
        PythonSaeFixtures.assumeAvailable();
        Path c = PythonSaeFixtures.generate(dir.resolve("case"), 4242, "--format", "saelens", "--arch", "jumprelu", "--tokens", "48");
        inputs = SafetensorsFile.open(c.resolve("input.safetensors")).tensor("activations").orElseThrow().toFloatArray();
        features = SafetensorsFile.open(c.resolve("expected.safetensors")).tensor("features").orElseThrow().toFloatArray();
        // the feature firing on most tokens; a threshold just below its smallest positive value: it fires wherever it is active
        int bestCount = -1;
        for (int f = 0; f < D_SAE; f++) {
            int n = 0;
            float min = Float.MAX_VALUE;
            for (int t = 0; t < 48; t++) {
                float v = features[t * D_SAE + f];
                if (v > 0) {
                    n++;
                    min = Math.min(min, v);
                }
            }
            if (n > bestCount) {
                bestCount = n;
                best = f;
                threshold = min * 0.999f;
            }
        }
        saes = Map.of(SAE, SaeLoader.load(c.resolve("sae")));
        metrics = new Metrics(new PrometheusRegistry());
        engine = engine("saeguard.yaml", """
                batching:
                  max_batch_tokens: 10000
                  max_delay_ms: 300
                metrics:
                  fvu_sample_rate: 0
                  full_encode_fraction: 1.0
                  sample_precision: f32
                """, metrics);
        engine.start(Duration.ofMinutes(2));
    }

    /** An engine on the case's SAE with the planted detector, publishing to the mock producer; {@code tail}: the config's other sections. */
    private EngineLoop engine(String file, String tail, Metrics m) throws Exception {
        Path config = dir.resolve(file);
        Files.writeString(config, """
                saes:
                  - id: %s
                    path: %s
                engine:
                  device: cpu
                  threads: 1
                """.formatted(SAE, dir.resolve("case").resolve("sae")) + tail);
        DirectSink sink = new DirectSink(producer, s -> { }, generation);
        EngineOutputs outputs = new EngineOutputs(new DecisionPublisher(sink, "decisions", "alerts", "shadow", "judge", Optional.empty(), m),
                new DeadLetterPublisher(sink, "deadletter", m), v -> { }, Runnable::run);
        return new EngineLoop(ConfigLoader.load(Optional.of(config), Map.of()), saes, List.of(detector("planted", threshold)),
                new EngineOptions(DeviceSpec.CPU, EngineOptions.defaultCacheDir(), 1, 1, false), outputs, m, generation, Time.SYSTEM);
    }

    @AfterEach
    void stopEngine() throws Exception {
        if (engine != null) {
            engine.close();
        }
    }

    private DetectorDefinition detector(String id, float featureThreshold) throws Exception {
        return DetectorDefinitions.parse(("""
                id: %s
                sae: %s
                rule:
                  kind: features
                  match: any
                  features:
                    - id: %d
                      threshold: %s
                aggregate: token
                policy:
                  bands:
                    - min: 1.0
                      action: flag
                """.formatted(id, SAE, best, Float.toString(featureThreshold))).getBytes(StandardCharsets.UTF_8), id + ".yaml");
    }

    /** A token on which the chosen feature fires (per the float64 reference); sent at position 1, since position 0 (BOS) never counts. */
    private int firingToken() {
        for (int t = 0; t < 48; t++) {
            if (features[t * D_SAE + best] > threshold) {
                return t;
            }
        }
        throw new AssertionError("the feature fires nowhere");
    }

    private Work work(String request, int token, long offset) throws Exception {
        float[] x = java.util.Arrays.copyOfRange(inputs, token * D_IN, (token + 1) * D_IN);
        byte[] bytes = ActivationCodec.builder(request).position(1).isFinal(true).activations(DType.F32, 1, D_IN, x).encode();
        ConsumerRecord<String, byte[]> record = new ConsumerRecord<>("activations", 0, offset, request, bytes);
        return new Work(record, generation.current(), ActivationCodec.decode(bytes), SAE, TokenNorms.ofFinite(x, 1, D_IN));
    }

    private CheckRequest checkOf(String request, int token) {
        float[] x = java.util.Arrays.copyOfRange(inputs, token * D_IN, (token + 1) * D_IN);
        return new CheckRequest(request, SAE, 1, 1, D_IN, Optional.of(x), Optional.empty(), Optional.empty(), true, Optional.empty());
    }

    private List<Decision> decisions() throws Exception {
        List<Decision> out = new ArrayList<>();
        for (ProducerRecord<String, byte[]> r : producer.history()) {
            if (r.topic().equals("decisions")) {
                out.add(CODEC.decodeDecision(r.value()));
            }
        }
        return out;
    }

    private HistogramSnapshot.HistogramDataPointSnapshot batchTokens() {
        return metrics.batchTokens.collect().getDataPoints().get(0);
    }

    @Test
    void aBf16SampleGetsAnEncoderOfItsOwnAndStillFeedsTheFeatureMetrics() throws Exception {
        // Given an engine whose every token is sampled, in BF16 (the tests' default engine samples in F32)
        assertThat(engine.samplePrecision()).isEqualTo("f32");
        Metrics own = new Metrics(new PrometheusRegistry());
        EngineLoop bf16 = engine("bf16.yaml", """
                batching:
                  max_batch_tokens: 10000
                  max_delay_ms: 50
                metrics:
                  fvu_sample_rate: 0
                  full_encode_fraction: 1.0
                  sample_precision: bf16
                """, own);
        bf16.start(Duration.ofMinutes(2));
        try {
            // When three records are decided
            for (int t = 0; t < 3; t++) {
                bf16.submit(work("b" + t, t, t));
            }

            // Then the sample was encoded by the BF16 encoder, and its tokens reached the feature statistics
            assertThat(bf16.samplePrecision()).isEqualTo("bf16");
            io.saeguard.sidecar.metrics.FeatureStats stats = bf16.featureStats().get(0);
            Awaitility.await().atMost(Duration.ofSeconds(20)).until(() -> stats.sampledTokens() == 3);
            assertThat(stats.topFeatures(10)).hasSizeGreaterThan(1);
        } finally {
            bf16.close();
        }
    }

    @Test
    void aBatchFullBeforeItsDelayPutsTheGrownFullCodeSampleBackOnItsFloorAtOnce() throws Exception {
        // Given an engine whose sample may grow from 1 % to 5 % on a machine that reads 10 % busy, with batches of
        // 4 tokens or 50 ms
        Metrics own = new Metrics(new PrometheusRegistry());
        EngineLoop sampled = sampleEngine("sample.yaml", 4, own);
        try {
            // and a token every 100 ms (each batch released by its delay) until the sample has grown to its maximum
            long offset = growSample(sampled, own, false);

            // When four tokens arrive at once: a batch full before its delay, a backlog
            for (int i = 0; i < 4; i++) {
                sampled.submit(work("burst-" + i, firingToken(), offset++));
            }

            // Then the sample is back on its floor with that batch, not halved a second later
            Awaitility.await().atMost(Duration.ofMillis(900)).pollInterval(Duration.ofMillis(10))
                    .until(() -> own.featureSampleFraction.get() == 0.01);
        } finally {
            sampled.close();
        }
    }

    @Test
    void atTheEndOfAPollWithNothingElseQueuedTheBatchIsEncodedWithoutWaitingForItsMaxDelay() throws Exception {
        // Given an engine whose batches would wait ten minutes, held still while two polls of one record each are queued
        Metrics own = new Metrics(new PrometheusRegistry());
        EngineLoop idle = tenMinuteBatches("idle.yaml", true, own);
        try {
            CountDownLatch held = new CountDownLatch(1);
            idle.call(() -> {
                awaitQuietly(held);
                return null;
            });
            int t = firingToken();
            idle.submit(work("r1", t, 0));
            idle.pollEnd(); // the second poll is already queued behind it: no flush here
            idle.submit(work("r2", t, 1));
            idle.pollEnd(); // nothing queued behind it: flush

            // When the engine goes on
            held.countDown();

            // Then both records are decided in one batch of 2 tokens, long before the max delay
            Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> own.batchTokens.collect().getDataPoints().get(0).getCount() == 1);
            assertThat(own.batchTokens.collect().getDataPoints().get(0).getSum()).isEqualTo(2.0);
        } finally {
            idle.close();
        }
    }

    @Test
    void withoutFlushOnIdleTheBatchWaitsForItsMaxDelayAfterAPoll() throws Exception {
        // Given an engine that does not flush on idle and whose batches would wait ten minutes
        Metrics own = new Metrics(new PrometheusRegistry());
        EngineLoop waiting = tenMinuteBatches("waiting.yaml", false, own);
        try {
            // When one poll of one record ends
            waiting.submit(work("r1", firingToken(), 0));
            waiting.pollEnd();
            Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> waiting.queued() == 0);
            Thread.sleep(500);

            // Then nothing was encoded yet
            assertThat(own.batchTokens.collect().getDataPoints()).allSatisfy(p -> assertThat(p.getCount()).isZero());
        } finally {
            waiting.close();
        }
        // And closing decides it
        assertThat(own.batchTokens.collect().getDataPoints().get(0).getCount()).isEqualTo(1);
    }

    @Test
    void aPollEndThatFindsTheNextPollQueuedPutsTheSampleBackOnItsFloor() throws Exception {
        // Given an idle machine, batches that never fill (10,000 tokens) and a sample grown to its maximum
        Metrics own = new Metrics(new PrometheusRegistry());
        EngineLoop sampled = sampleEngine("poll-backlog.yaml", 10_000, own);
        try {
            long offset = growSample(sampled, own, true);

            // When a poll ends while the next poll's record is already queued behind it
            CountDownLatch held = new CountDownLatch(1);
            sampled.call(() -> {
                awaitQuietly(held);
                return null;
            });
            sampled.submit(work("burst-0", firingToken(), offset++));
            sampled.pollEnd();
            sampled.submit(work("burst-1", firingToken(), offset++));
            sampled.pollEnd();
            held.countDown();

            // Then the sample is back on its floor at once, not halved a second later
            Awaitility.await().atMost(Duration.ofMillis(900)).pollInterval(Duration.ofMillis(10))
                    .until(() -> own.featureSampleFraction.get() == 0.01);
        } finally {
            sampled.close();
        }
    }

    /** A started engine without a metrics sample whose batches wait ten minutes for tokens that never fill them. */
    private EngineLoop tenMinuteBatches(String file, boolean flushOnIdle, Metrics own) throws Exception {
        EngineLoop e = engine(file, """
                batching:
                  max_batch_tokens: 10000
                  max_delay_ms: 600000
                  flush_on_idle: %s
                metrics:
                  fvu_sample_rate: 0
                  full_encode_fraction: 0
                """.formatted(flushOnIdle), own);
        e.start(Duration.ofMinutes(2));
        return e;
    }

    /** A started engine whose sample may grow from 1 % to 5 % on a machine that reads 10 % busy; batches of {@code maxTokens} or 50 ms. */
    private EngineLoop sampleEngine(String file, int maxTokens, Metrics own) throws Exception {
        EngineLoop e = engine(file, """
                batching:
                  max_batch_tokens: %d
                  max_delay_ms: 50
                metrics:
                  fvu_sample_rate: 0
                  full_encode_fraction: 0.01
                  full_encode_max_fraction: 0.05
                """.formatted(maxTokens), own).machineLoad(() -> 0.1);
        e.start(Duration.ofMinutes(2));
        return e;
    }

    /** Sends a token every 100 ms (each a poll of its own when {@code pollEnds}) until the sample reached 5 %; the next offset. */
    private long growSample(EngineLoop e, Metrics own, boolean pollEnds) throws Exception {
        long offset = 0;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (own.featureSampleFraction.get() < 0.05 && System.nanoTime() < deadline) {
            e.submit(work("slow-" + offset, firingToken(), offset++));
            if (pollEnds) {
                e.pollEnd();
            }
            Thread.sleep(100);
        }
        assertThat(own.featureSampleFraction.get()).as("grown on the idle machine").isEqualTo(0.05);
        return offset;
    }

    private static void awaitQuietly(CountDownLatch latch) {
        try {
            latch.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Test
    void anHttpCheckJoinsTheCurrentBatchInsteadOfFlushingIt() throws Exception {
        // Given a record waiting in its SAE's batch (budget 10,000 tokens, 300 ms)
        int t = firingToken();
        engine.submit(work("r1", t, 0));

        // When a check for the same SAE arrives
        CheckResult result = engine.check(checkOf("http-1", t)).get(30, TimeUnit.SECONDS);

        // Then both were encoded in one batch of 2 tokens, and the check was decided as the record was
        assertThat(batchTokens().getCount()).isEqualTo(1);
        assertThat(batchTokens().getSum()).isEqualTo(2.0);
        assertThat(result.outcome()).hasValueSatisfying(o -> assertThat(o.decision().action()).isEqualTo(Action.FLAG));
        Awaitility.await().atMost(Duration.ofSeconds(10)).until(() -> decisions().size() == 1);
        assertThat(decisions().get(0).action()).isEqualTo(Action.FLAG);
        // And the check's token does not count as traffic
        assertThat(metrics.tokensEncoded.labelValues(SAE).get()).isEqualTo(1.0);
    }

    @Test
    void aDetectorAddedAtRunTimeWidensTheEncodedFeaturesAndHttpEncodeStillReturnsEveryFeature() throws Exception {
        // Given the JumpReLU SAE on the watched-feature encode, watching only the planted detector's feature
        assertThat(engine.watchedFeatures()).isEqualTo(Map.of(SAE, java.util.Set.of(best)));
        int other = -1;
        int token = -1;
        for (int t = 0; t < 48 && other < 0; t++) {
            for (int f = 0; f < D_SAE; f++) {
                if (f != best && features[t * D_SAE + f] > 1e-3f && features[t * D_SAE + best] <= threshold) {
                    other = f;
                    token = t;
                    break;
                }
            }
        }
        assertThat(other).as("a token where another feature fires and the planted one does not").isNotNegative();
        float otherThreshold = features[token * D_SAE + other] * 0.5f;

        // When a detector on that other feature is added, and the token arrives
        DetectorDefinition added = DetectorDefinitions.parse(("""
                id: added
                sae: %s
                rule:
                  kind: features
                  match: any
                  features:
                    - {id: %d, threshold: %s}
                aggregate: token
                policy: {bands: [{min: 1.0, action: block}]}
                """.formatted(SAE, other, Float.toString(otherThreshold))).getBytes(StandardCharsets.UTF_8), "added.yaml");
        assertThat(engine.replaceDetector(added).get(30, TimeUnit.SECONDS)).isFalse();
        engine.submit(work("widened", token, 0));
        engine.call(() -> null).get(30, TimeUnit.SECONDS);

        // Then the new detector read its feature (watched now) and blocked
        assertThat(engine.watchedFeatures().get(SAE)).containsExactlyInAnyOrder(best, other);
        Awaitility.await().atMost(Duration.ofSeconds(10)).until(() -> decisions().size() == 1);
        assertThat(decisions().get(0).action()).isEqualTo(Action.BLOCK);
        assertThat(decisions().get(0).detector()).contains("added");

        // And /v1/encode's codes hold every active feature of the token (the float64 reference's), not just the watched
        CheckResult encoded = engine.encode(checkOf("enc", token)).get(30, TimeUnit.SECONDS);
        int row = token * D_SAE;
        long active = java.util.stream.IntStream.range(0, D_SAE).filter(f -> features[row + f] != 0).count();
        assertThat(encoded.codes().activeCount(0)).as("full codes").isGreaterThan(2).isBetween((int) active - 1, (int) active + 1);
    }

    @Test
    void theWatchedFeaturesCountEveryTokenAndTheSampleFeedsTheOtherFeatureMetrics() throws Exception {
        // Given every token sampled (full_encode_fraction 1) and three records, one token each
        for (int t = 0; t < 3; t++) {
            engine.submit(work("r" + t, t, t));
        }
        engine.call(() -> null).get(30, TimeUnit.SECONDS);

        // When the engine idles long enough for the pending sample to be encoded whole
        io.saeguard.sidecar.metrics.FeatureStats stats = engine.featureStats().get(0);
        Awaitility.await().atMost(Duration.ofSeconds(20)).until(() -> stats.sampledTokens() == 3);

        // Then the watched feature's exact count is the reference's, the sample's agrees, and unwatched features are ranked
        long reference = java.util.stream.IntStream.range(0, 3).filter(t -> features[t * D_SAE + best] != 0).count();
        assertThat(stats.tokens()).isEqualTo(3);
        assertThat(stats.exact(best)).isTrue();
        assertThat(stats.fires(best)).isEqualTo(reference);
        assertThat(stats.sampledFires(best)).isEqualTo(reference);
        assertThat(stats.topFeatures(10)).hasSizeGreaterThan(1);
        long unwatched = java.util.stream.IntStream.range(0, D_SAE).filter(f -> f != best && features[f] != 0).count();
        assertThat(java.util.stream.IntStream.range(0, D_SAE).filter(f -> f != best && stats.sampledFires(f) > 0 && features[f] != 0).count())
                .as("token 0's unwatched features, from the sample").isBetween(unwatched - 1, unwatched);
    }

    @Test
    void recordsQueuedBeforeAReplacementAreDecidedByTheOldVersionAndLaterOnesByTheNew() throws Exception {
        // Given a record queued under the flagging detector
        int t = firingToken();
        engine.submit(work("before", t, 0));

        // When the detector is replaced by one that never fires, then another record arrives
        CompletableFuture<Boolean> replaced = engine.replaceDetector(detector("planted", 1e9f));
        engine.submit(work("after", t, 1));
        engine.call(() -> null).get(30, TimeUnit.SECONDS);

        // Then the first was flagged and the second allowed, and the running definition is the new one
        assertThat(replaced.get(30, TimeUnit.SECONDS)).isTrue();
        Awaitility.await().atMost(Duration.ofSeconds(10)).until(() -> decisions().size() == 2);
        assertThat(decisions()).extracting(Decision::requestId, Decision::action)
                .containsExactly(org.assertj.core.groups.Tuple.tuple("before", Action.FLAG), org.assertj.core.groups.Tuple.tuple("after",
                        Action.ALLOW));
        assertThat(engine.detectorDefinitions()).singleElement().satisfies(d -> assertThat(d.rule().toString()).contains("1.0E9"));
    }

    @Test
    void aDetectorNamingAFeatureTheSaeDoesNotHaveIsRefusedAndTheRunningOneStays() throws Exception {
        // Given a definition naming feature d_sae
        DetectorDefinition bad = DetectorDefinitions.parse(("""
                id: planted
                sae: %s
                rule:
                  kind: features
                  features:
                    - id: %d
                      threshold: 1.0
                policy:
                  bands:
                    - min: 1.0
                      action: block
                """.formatted(SAE, D_SAE)).getBytes(StandardCharsets.UTF_8), "bad.yaml");

        // When it replaces the running one, Then it is refused naming the feature and the SAE's size
        assertThatThrownBy(() -> engine.replaceDetector(bad).get(30, TimeUnit.SECONDS)).isInstanceOf(ExecutionException.class)
                .cause().isInstanceOf(InvalidRequestException.class).hasMessageContaining("feature " + D_SAE)
                .hasMessageContaining("has " + D_SAE + " features");
        assertThat(engine.detectorDefinitions()).singleElement().satisfies(d -> assertThat(d.rule().toString()).doesNotContain("block"));
    }

    @Test
    void aCheckWithTheWrongWidthOrANonFiniteValueIsRefusedBeforeItIsQueued() {
        CheckRequest narrow = new CheckRequest("w", SAE, 0, 1, D_IN - 1, Optional.of(new float[D_IN - 1]), Optional.empty(), Optional.empty(),
                true, Optional.empty());
        assertThatThrownBy(() -> engine.check(narrow)).isInstanceOf(InvalidRequestException.class).hasMessageContaining("expects d_in " + D_IN);

        float[] x = new float[2 * D_IN];
        x[D_IN + 3] = Float.NaN;
        CheckRequest nan = new CheckRequest("n", SAE, 5, 2, D_IN, Optional.of(x), Optional.empty(), Optional.empty(), true, Optional.empty());
        assertThatThrownBy(() -> engine.check(nan)).isInstanceOf(InvalidRequestException.class).hasMessageContaining("token 1 (position 6)")
                .hasMessageContaining("dimension 3");
        assertThat(engine.queued()).isZero();
    }

    @Test
    void workOfAStaleGenerationIsDroppedWithoutADecision() throws Exception {
        // Given a record consumed before a recovery
        Work stale = work("stale", firingToken(), 0);
        generation.advance();

        // When it reaches the engine with a fresh one
        engine.submit(stale);
        engine.submit(work("fresh", firingToken(), 1));
        engine.call(() -> null).get(30, TimeUnit.SECONDS);

        // Then only the fresh one is decided
        Awaitility.await().atMost(Duration.ofSeconds(10)).until(() -> decisions().size() >= 1);
        assertThat(decisions()).extracting(Decision::requestId).containsExactly("fresh");
    }
}
