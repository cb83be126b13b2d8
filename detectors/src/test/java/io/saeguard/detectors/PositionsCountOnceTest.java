package io.saeguard.detectors;

import static io.saeguard.detectors.TestChunks.D_SAE;
import static io.saeguard.detectors.TestChunks.chunk;
import static org.assertj.core.api.Assertions.assertThat;

import io.saeguard.topics.events.Decision;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Each request position counts once (issue 19, item 4): a redelivered record, a prefill checked and then published
 * again, or chunks that overlap give, for every aggregation, the decisions and scores of the same request fed once
 * (the reference: the de-duplicated chunks through a fresh engine). Requests are random, drawn fresh per run with a
 * printed seed.
 */
class PositionsCountOnceTest {
    /** One detector per aggregation over feature 3 (threshold 2, so token score = a₃ / 2; DSG fires on a₃ > 0). */
    private static final List<String> DETECTORS = List.of(
            Yaml.features("token", "aggregate: token\npolicy: {bands: [{min: 1.0, action: flag}, {min: 2.0, action: block}]}\n"),
            Yaml.features("max", "aggregate: max\npolicy: {bands: [{min: 1.0, action: flag}, {min: 2.2, action: block}]}\n"),
            Yaml.features("mean", "aggregate: mean\npolicy: {bands: [{min: 0.2, action: flag}, {min: 0.4, action: block}]}\n"),
            Yaml.features("count", "aggregate: count\npolicy: {bands: [{min: 3, action: flag}, {min: 12, action: block}]}\n"),
            Yaml.features("fraction", "aggregate: fraction\npolicy: {bands: [{min: 0.1, action: flag}, {min: 0.2, action: block}]}\n"),
            Yaml.features("window", "aggregate: window\nwindow: 8\npolicy: {bands: [{min: 1.5, action: flag}]}\n"),
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
        System.out.println("PositionsCountOnceTest seed " + seed);
    }

    /** What one evaluation decided: the decision without its seq, and each detector's score and action. */
    private record Outcome(Decision decision, List<String> verdicts) {
        static Outcome of(ChunkOutcome o) {
            Decision d = o.decision();
            Decision noSeq = new Decision(d.requestId(), 0, d.action(), d.detector(), d.tier(), d.score(), d.position(),
                    d.features(), d.vector(), d.reason(), d.latencyMs(), d.ts());
            return new Outcome(noSeq, o.verdicts().stream().map(v -> v.detector() + "=" + v.score() + "/" + v.action()).toList());
        }
    }

    private record Span(int from, int to, boolean last) {}

    private static DetectorEngine engine() {
        return DetectorEngine.create(DETECTORS.stream().map(Yaml::definition).toList(), DecoderDirections.none(),
                new StateLimits(Duration.ofMinutes(1), 10));
    }

    /** Dense rows of a random request: feature 3 on about one token in five, a few tokens marked special. */
    private float[][] request(int tokens) {
        float[][] rows = new float[tokens][D_SAE];
        for (int t = 0; t < tokens; t++) {
            if (random.nextDouble() < 0.2) {
                rows[t][3] = (float) (random.nextDouble() * 5);
            }
            if (random.nextDouble() < 0.3) {
                rows[t][9] = (float) random.nextDouble();
            }
        }
        return rows;
    }

    private boolean[] specials;

    private Chunk chunkOf(float[][] rows, Span s) {
        TestChunks.Builder b = chunk("r", s.from(), Arrays.copyOfRange(rows, s.from(), s.to()))
                .special(Arrays.copyOfRange(specials, s.from(), s.to()));
        return s.last() ? b.last().build() : b.build();
    }

    /** Cuts {@code [0, tokens)} into runs of 1..12 tokens, the last one final. */
    private List<Span> cut(int from, int tokens) {
        List<Span> spans = new ArrayList<>();
        int at = from;
        while (at < tokens) {
            int to = Math.min(tokens, at + 1 + random.nextInt(12));
            spans.add(new Span(at, to, to == tokens));
            at = to;
        }
        return spans;
    }

    private List<Outcome> feed(DetectorEngine engine, float[][] rows, List<Span> spans) {
        List<Outcome> out = new ArrayList<>();
        for (Span s : spans) {
            out.add(Outcome.of(engine.evaluate(chunkOf(rows, s), 0)));
        }
        return out;
    }

    private float[][] randomRequest(int tokens) {
        float[][] rows = request(tokens);
        specials = new boolean[tokens];
        for (int t = 0; t < tokens; t++) {
            specials[t] = random.nextDouble() < 0.05;
        }
        return rows;
    }

    @Test
    void everyChunkFedTwiceInARowDecidesTwiceAsTheRequestFedOnce() {
        for (int run = 0; run < 50; run++) {
            // Given
            float[][] rows = randomRequest(40 + random.nextInt(200));
            List<Span> once = cut(0, rows.length);
            List<Outcome> reference = feed(engine(), rows, once);

            // When: every chunk but the final one redelivered right after itself
            List<Span> twice = new ArrayList<>();
            for (Span s : once) {
                twice.add(s);
                if (!s.last()) {
                    twice.add(s);
                }
            }
            List<Outcome> got = feed(engine(), rows, twice);

            // Then
            List<Outcome> expected = new ArrayList<>();
            for (int i = 0; i < once.size(); i++) {
                expected.add(reference.get(i));
                if (!once.get(i).last()) {
                    expected.add(reference.get(i));
                }
            }
            assertThat(got).as("seed %d", seed).containsExactlyElementsOf(expected);
        }
    }

    @Test
    void aRedeliveredBatchKeepsTheRequestsCurrentScoresAndTheChunksAfterItDecideAsIfItNeverCame() {
        for (int run = 0; run < 50; run++) {
            // Given: chunks [0, k) delivered, then [j, k) again (redelivered after a crash), then the rest
            float[][] rows = randomRequest(60 + random.nextInt(200));
            List<Span> once = cut(0, rows.length);
            int k = 2 + random.nextInt(once.size() - 2);
            int j = random.nextInt(k);
            List<Outcome> reference = feed(engine(), rows, once);

            // When
            List<Span> redelivered = new ArrayList<>(once.subList(0, k));
            redelivered.addAll(once.subList(j, k));
            redelivered.addAll(once.subList(k, once.size()));
            List<Outcome> got = feed(engine(), rows, redelivered);

            // Then: before and after the batch, the reference; in it, token scores its chunk again and every other
            // aggregation keeps its score as of chunk k - 1
            assertThat(got.subList(0, k)).as("seed %d", seed).containsExactlyElementsOf(reference.subList(0, k));
            assertThat(got.subList(k + (k - j), got.size())).as("seed %d", seed)
                    .containsExactlyElementsOf(reference.subList(k, reference.size()));
            for (int i = j; i < k; i++) {
                List<String> again = got.get(k + (i - j)).verdicts();
                List<String> current = reference.get(k - 1).verdicts();
                assertThat(again.get(0)).as("seed %d token", seed).isEqualTo(reference.get(i).verdicts().get(0));
                assertThat(again.subList(1, again.size())).as("seed %d", seed).isEqualTo(current.subList(1, current.size()));
            }
        }
    }

    @Test
    void aPrefillCheckedThenPublishedWithNewTokensDecidesAsTheHooksChunksAlone() {
        for (int run = 0; run < 50; run++) {
            // Given: the hook's chunks, the first one the prompt [0, p) plus k generated tokens
            float[][] rows = randomRequest(40 + random.nextInt(200));
            int p = 1 + random.nextInt(30);
            int k = 1 + random.nextInt(8);
            List<Span> hook = new ArrayList<>();
            hook.add(new Span(0, p + k, false));
            hook.addAll(cut(p + k, rows.length));
            List<Outcome> reference = feed(engine(), rows, hook);

            // When: the prompt was checked first (POST /v1/check) under the same request id
            DetectorEngine engine = engine();
            feed(engine, rows, List.of(new Span(0, p, false)));
            List<Outcome> got = feed(engine, rows, hook);

            // Then
            assertThat(got).as("seed %d", seed).containsExactlyElementsOf(reference);
        }
    }

    @Test
    void chunksOutOfOrderAndRepeatedDecideAsTheSameOrderWithoutRepeats() {
        for (int run = 0; run < 50; run++) {
            // Given: non-final chunks shuffled, the final one last
            float[][] rows = randomRequest(40 + random.nextInt(200));
            List<Span> spans = cut(0, rows.length);
            Span last = spans.remove(spans.size() - 1);
            Collections.shuffle(spans, random);
            spans.add(last);
            List<Outcome> reference = feed(engine(), rows, spans);

            // When: each non-final chunk delivered again at a random later point before the final one
            List<Span> repeated = new ArrayList<>(spans.subList(0, spans.size() - 1));
            for (int i = 0; i < spans.size() - 1; i++) {
                int at = repeated.indexOf(spans.get(i)) + 1 + random.nextInt(repeated.size() - repeated.indexOf(spans.get(i)));
                repeated.add(at, spans.get(i));
            }
            repeated.add(last);
            DetectorEngine engine = engine();
            List<Outcome> got = new ArrayList<>();
            List<Span> seen = new ArrayList<>();
            for (Span s : repeated) {
                Outcome o = Outcome.of(engine.evaluate(chunkOf(rows, s), 0));
                if (!seen.contains(s)) {
                    seen.add(s);
                    got.add(o);
                }
            }

            // Then: each chunk's first delivery decides as in the reference
            assertThat(got).as("seed %d", seed).containsExactlyElementsOf(reference);
        }
    }

    @Test
    void aLongRequestFedTwiceCountsEachFiringTokenOnce() {
        // Given: 100,000 tokens in chunks of 10, each delivered twice; a token fires where feature 3 is 2 or more
        DetectorEngine engine = engine();
        float[][] row = new float[10][D_SAE];
        for (int t = 0; t < 10; t += 5) {
            row[t][3] = 3f;
        }
        int chunks = 10_000;
        double count = 0;

        // When
        for (int c = 0; c < chunks; c++) {
            for (int again = 0; again < 2; again++) {
                count = engine.evaluate(chunk("r", 10L * c, row).build(), 0).verdicts().get(3).score();
            }
        }

        // Then: 2 per chunk, not 4 (position 0 is BOS and fires but never counts)
        assertThat(count).isEqualTo(2.0 * chunks - 1);
    }
}
