package io.saeguard.detectors;

import static io.saeguard.detectors.TestChunks.D_SAE;
import static io.saeguard.detectors.TestChunks.SAE;
import static io.saeguard.detectors.TestChunks.chunk;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.saeguard.detectors.RequestSnapshot.DetectorSnapshot;
import io.saeguard.detectors.RequestSnapshot.Positions;
import io.saeguard.detectors.RequestSnapshot.SaeProgress;
import io.saeguard.detectors.RequestSnapshotCodec.SnapshotFormatException;
import io.saeguard.topics.events.Action;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Request state as data (issue 19, item 3): the codec keeps every field, and a request whose chunks are decided by
 * two engines, the second restored from the first's encoded snapshot, gets the decisions, alerts and verdicts of one
 * engine fed every chunk, for every aggregation and latched steering. Requests are random, drawn fresh per run with a
 * printed seed.
 */
class RequestSnapshotTest {
    /** One detector per aggregation over feature 3 (threshold 2), DSG plain and windowed, and a latching steer. */
    private static final List<String> DETECTORS = List.of(
            Yaml.features("token", "aggregate: token\npolicy: {alert_at: 1.0, bands: [{min: 1.0, action: flag}, {min: 2.0, action: block}]}\n"),
            Yaml.features("max", "aggregate: max\npolicy: {alert_at: 1.0, bands: [{min: 1.0, action: flag}, {min: 2.2, action: block}]}\n"),
            Yaml.features("mean", "aggregate: mean\npolicy: {bands: [{min: 0.2, action: flag}, {min: 0.4, action: block}]}\n"),
            Yaml.features("count", "aggregate: count\npolicy: {bands: [{min: 3, action: flag}, {min: 12, action: block}]}\n"),
            Yaml.features("fraction", "aggregate: fraction\npolicy: {bands: [{min: 0.1, action: flag}, {min: 0.2, action: block}]}\n"),
            Yaml.features("windowed-fraction", "aggregate: fraction\nwindow: 6\npolicy: {bands: [{min: 0.3, action: flag}]}\n"),
            Yaml.features("window", "aggregate: window\nwindow: 8\npolicy: {bands: [{min: 1.5, action: flag}]}\n"),
            Yaml.features("latch", "aggregate: token\npolicy: {bands: [{min: 2.0, action: steer, tier: medium, coefficient: -3.0}]}\n"),
            """
            id: dsg
            sae: sae-test
            rule: {kind: dsg, tau: 0.3, features: [3]}
            policy: {bands: [{min: 0.8, action: flag}, {min: 1.2, action: block}]}
            """,
            """
            id: dsg-windowed
            sae: sae-test
            rule: {kind: dsg, tau: 0.3, window: 8, features: [3]}
            policy: {bands: [{min: 1.0, action: flag}, {min: 1.5, action: block}]}
            """);

    private long seed;
    private Random random;

    @BeforeEach
    void drawSeed() {
        seed = System.nanoTime();
        random = new Random(seed);
        System.out.println("RequestSnapshotTest seed " + seed);
    }

    private static DetectorEngine engine(List<String> yaml) {
        return DetectorEngine.create(yaml.stream().map(Yaml::definition).toList(), TestDirections.simple(SAE, D_SAE, 8),
                new StateLimits(Duration.ofMinutes(1), 10));
    }

    private record Span(int from, int to, boolean last) {}

    private Chunk chunkOf(float[][] rows, float[] norms, Span s) {
        TestChunks.Builder b = chunk("r", s.from(), Arrays.copyOfRange(rows, s.from(), s.to()))
                .norms(Arrays.copyOfRange(norms, s.from(), s.to()));
        return s.last() ? b.last().build() : b.build();
    }

    private List<Span> cut(int tokens) {
        List<Span> spans = new ArrayList<>();
        int at = 0;
        while (at < tokens) {
            int to = Math.min(tokens, at + 1 + random.nextInt(12));
            spans.add(new Span(at, to, to == tokens));
            at = to;
        }
        return spans;
    }

    private static ChunkOutcome feed(DetectorEngine engine, float[][] rows, float[] norms, Span s, RequestSnapshotTest t) {
        return engine.evaluate(t.chunkOf(rows, norms, s), 0);
    }

    @Test
    void aRequestHandedToASecondEngineThroughAnEncodedSnapshotDecidesAsOnOneEngine() throws Exception {
        for (int run = 0; run < 100; run++) {
            // Given: a random request, its chunks possibly out of order (so the counted positions have gaps)
            int tokens = 20 + random.nextInt(150);
            float[][] rows = new float[tokens][D_SAE];
            float[] norms = new float[tokens];
            for (int t = 0; t < tokens; t++) {
                if (random.nextDouble() < 0.2) {
                    rows[t][3] = (float) (random.nextDouble() * 5);
                }
                norms[t] = 1 + (float) random.nextDouble();
            }
            List<Span> spans = cut(tokens);
            if (spans.size() > 3 && random.nextBoolean()) {
                Collections.swap(spans, 0, 1 + random.nextInt(spans.size() - 2));
            }
            DetectorEngine one = engine(DETECTORS);
            List<ChunkOutcome> reference = new ArrayList<>();
            for (Span s : spans) {
                reference.add(feed(one, rows, norms, s, this));
            }

            // When: the first k chunks on engine a, the rest on engine b restored from a's encoded snapshot
            int k = 1 + random.nextInt(spans.size());
            DetectorEngine a = engine(DETECTORS);
            List<ChunkOutcome> got = new ArrayList<>();
            for (Span s : spans.subList(0, k)) {
                got.add(feed(a, rows, norms, s, this));
            }
            DetectorEngine b = engine(DETECTORS);
            a.snapshot("r").ifPresent(s -> {
                try {
                    b.restore(RequestSnapshotCodec.decode(RequestSnapshotCodec.encode(s)));
                } catch (SnapshotFormatException e) {
                    throw new AssertionError(e);
                }
            });
            for (Span s : spans.subList(k, spans.size())) {
                got.add(feed(b, rows, norms, s, this));
            }

            // Then
            assertThat(got).as("seed %d, handed over after chunk %d of %d", seed, k, spans.size()).containsExactlyElementsOf(reference);
            assertThat(b.snapshotStatesSkipped()).isZero();
        }
    }

    @Test
    void everyFieldSurvivesTheCodec() throws Exception {
        // Given
        RequestSnapshot s = new RequestSnapshot("req-ü-1", 7, 1_700_000_000_123L,
                List.of(new SaeProgress("sae-a", true), new SaeProgress("sae-b", false)),
                List.of(new DetectorSnapshot("tox", 0x1234_5678_9abc_def0L, new Positions(40, 3, new long[] {45, 50, 60, 61}), 38, 5,
                                4.5, 17.25, new double[] {1, 0, 1, 1}, 2, 4, 3, 0.75, 1, 2, 17, 3.5),
                        new DetectorSnapshot("quiet", -1, new Positions(0, 0, new long[0]), 0, 0, Double.NEGATIVE_INFINITY, 0,
                                new double[0], 0, 0, 0, 0, -1, -1, -1, Double.NaN)));

        // When
        RequestSnapshot back = RequestSnapshotCodec.decode(RequestSnapshotCodec.encode(s));

        // Then
        assertThat(back).isEqualTo(s);
        assertThat(back.detectors().get(0).positions().ranges()).containsExactly(45, 50, 60, 61);
        assertThat(back.detectors().get(0).ring()).containsExactly(1, 0, 1, 1);
        assertThat(back.detectors().get(1).lastMeanNorm()).isNaN();
    }

    @Test
    void theBytesAreDataOutputStreamsForTheDocumentedLayout() throws Exception {
        // Given: ids with one-, two- and three-byte characters, U+0000 and a surrogate pair (modified UTF-8's cases)
        RequestSnapshot s = new RequestSnapshot("req-\u00e9-\u0000-\u4e2d-\ud83d\ude00", 7, 1_700_000_000_123L,
                List.of(new SaeProgress("sae-\u00fc", true), new SaeProgress("b", false)),
                List.of(new DetectorSnapshot("tox-\u4e2d", 0x1234_5678_9abc_def0L, new Positions(40, 3, new long[] {45, 50, 60, 61}), 38,
                                5, 4.5, 17.25, new double[] {1, 0, 1, 1}, 2, 4, 3, 0.75, 1, 2, 17, 3.5),
                        new DetectorSnapshot("quiet", -1, new Positions(0, 0, new long[0]), 0, 0, Double.NEGATIVE_INFINITY, 0,
                                new double[0], 0, 0, 0, 0, -1, -1, -1, Double.NaN)));

        // When
        byte[] bytes = RequestSnapshotCodec.encode(s);

        // Then: the layout in RequestSnapshotCodec's comment, written field by field with DataOutputStream
        java.io.ByteArrayOutputStream expected = new java.io.ByteArrayOutputStream();
        try (java.io.DataOutputStream out = new java.io.DataOutputStream(expected)) {
            out.write(new byte[] {'S', 'G', 'S', 1});
            out.writeUTF(s.requestId());
            out.writeLong(s.nextSeq());
            out.writeLong(s.lastSeenMillis());
            out.writeInt(s.saes().size());
            for (SaeProgress p : s.saes()) {
                out.writeUTF(p.sae());
                out.writeBoolean(p.finished());
            }
            out.writeInt(s.detectors().size());
            for (DetectorSnapshot d : s.detectors()) {
                out.writeUTF(d.detector());
                out.writeLong(d.fingerprint());
                out.writeLong(d.positions().below());
                out.writeLong(d.positions().givenUp());
                out.writeInt(d.positions().ranges().length / 2);
                for (long v : d.positions().ranges()) {
                    out.writeLong(v);
                }
                out.writeLong(d.counted());
                out.writeLong(d.fired());
                out.writeDouble(d.max());
                out.writeDouble(d.sum());
                out.writeInt(d.ring().length);
                for (double v : d.ring()) {
                    out.writeDouble(v);
                }
                out.writeInt(d.ringPos());
                out.writeInt(d.ringFill());
                out.writeInt(d.windowFired());
                out.writeDouble(d.bestRate());
                out.writeInt(d.latchedBand());
                out.writeInt(d.alertedLevel());
                out.writeInt(d.lastTopFeature());
                out.writeDouble(d.lastMeanNorm());
            }
        }
        assertThat(bytes).isEqualTo(expected.toByteArray());
        assertThat(RequestSnapshotCodec.decode(bytes)).isEqualTo(s);
    }

    @Test
    void anIdTooLongForModifiedUtf8IsRefusedAsWriteUtfRefusesIt() {
        String id = "\u4e2d".repeat(21_846); // 65,538 bytes in modified UTF-8
        RequestSnapshot s = new RequestSnapshot(id, 1, 2, List.of(), List.of());

        assertThatThrownBy(() -> RequestSnapshotCodec.encode(s)).isInstanceOf(java.io.UncheckedIOException.class)
                .hasCauseInstanceOf(java.io.UTFDataFormatException.class);
    }

    @Test
    void countedPositionsWithGapsSurviveASnapshot() {
        // Given
        CountedPositions p = new CountedPositions();
        p.add(0, 10);
        p.add(20, 30);
        p.add(40, 41);

        // When
        CountedPositions back = new CountedPositions();
        back.restore(p.snapshot());

        // Then
        assertThat(back.below()).isEqualTo(10);
        assertThat(back.gaps()).isEqualTo(2);
        assertThat(back.contains(25)).isTrue();
        assertThat(back.contains(15)).isFalse();
        back.add(10, 20);
        assertThat(back.below()).isEqualTo(30);
    }

    @Test
    void bytesThatAreNotASnapshotOfAKnownVersionAreRefusedWithoutTheirContent() {
        byte[] good = RequestSnapshotCodec.encode(new RequestSnapshot("secret-request", 1, 2, List.of(), List.of()));
        byte[] future = good.clone();
        future[3] = 9;

        assertThatThrownBy(() -> RequestSnapshotCodec.decode("{\"json\": 1}".getBytes())).isInstanceOf(SnapshotFormatException.class)
                .hasMessageContaining("magic");
        assertThatThrownBy(() -> RequestSnapshotCodec.decode(future)).isInstanceOf(SnapshotFormatException.class)
                .hasMessageContaining("version 9");
        assertThatThrownBy(() -> RequestSnapshotCodec.decode(Arrays.copyOf(good, good.length - 3)))
                .isInstanceOf(SnapshotFormatException.class).hasMessageContaining("truncated").hasMessageNotContaining("secret");
        assertThatThrownBy(() -> RequestSnapshotCodec.decode(Arrays.copyOf(good, good.length + 2)))
                .isInstanceOf(SnapshotFormatException.class).hasMessageContaining("trailing");
    }

    @Test
    void aRedefinedDetectorStartsAfreshAndTheOthersKeepTheirState() {
        // Given: the request's max is 2 on engine a (position 0 is skipped as the BOS token)
        String max = Yaml.features("max", "aggregate: max\npolicy: {bands: [{min: 1.0, action: flag}]}\n");
        String other = Yaml.features("other", "aggregate: max\npolicy: {bands: [{min: 1.0, action: flag}]}\n");
        String maxRedefined = Yaml.features("max", "aggregate: max\npolicy: {bands: [{min: 1.5, action: flag}]}\n");
        DetectorEngine a = engine(List.of(max, other));
        a.evaluate(chunk("r", 1, TestChunks.oneHot(D_SAE, new int[] {3}, new float[] {4})).build(), 0);
        RequestSnapshot s = a.snapshot("r").orElseThrow();

        // When
        DetectorEngine b = engine(List.of(maxRedefined, other));
        b.restore(s);
        ChunkOutcome next = b.evaluate(chunk("r", 2, TestChunks.oneHot(D_SAE, new int[] {-1}, new float[] {0})).build(), 0);

        // Then
        assertThat(b.snapshotStatesSkipped()).isEqualTo(1);
        assertThat(next.decision().seq()).isEqualTo(1);
        assertThat(next.verdicts()).extracting(Verdict::detector, Verdict::action)
                .containsExactly(org.assertj.core.groups.Tuple.tuple("max", Action.ALLOW), org.assertj.core.groups.Tuple.tuple("other", Action.FLAG));
    }

    @Test
    void aFinishedRequestHasNoSnapshot() {
        DetectorEngine a = engine(DETECTORS);
        a.evaluate(chunk("r", 0, TestChunks.oneHot(D_SAE, new int[] {3}, new float[] {4})).last().build(), 0);

        assertThat(a.snapshot("r")).isEmpty();
    }
}
