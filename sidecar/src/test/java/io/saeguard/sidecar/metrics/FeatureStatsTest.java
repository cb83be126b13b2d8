package io.saeguard.sidecar.metrics;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.saeguard.topics.codes.SparseCodes;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class FeatureStatsTest {
    /** Tokens: t0 {1}, t1 {1, 2}, t2 {}, t3 {1} over d_sae = 3 (kmax 2, -1/0 padding). */
    @Test
    void withoutASparsityFileTheFirstTokensBecomeTheBaseline() {
        // Given an SAE without sparsity.safetensors and a calibration window of 4 tokens
        FeatureStats s = new FeatureStats("s", 3, Optional.empty(), 1e12, 1_000, 4);
        assertThat(s.baselineSource()).isEqualTo("none");
        assertThat(s.drift()).isEmpty();

        // When the first 4 tokens arrive (feature 1 on 3, feature 2 on 1)
        s.record(fourTokens());

        // Then their densities are the baseline, and the same traffic shows no drift
        assertThat(s.baselineSource()).isEqualTo("calibration");
        assertThat(s.baselineDensity(1).orElseThrow()).isCloseTo(0.75, within(1e-6));
        assertThat(s.baselineDensity(2).orElseThrow()).isCloseTo(0.25, within(1e-6));
        assertThat(s.baselineDensity(0)).hasValue(0.0);
        assertThat(s.drift().orElseThrow()).isCloseTo(0.0, within(1e-6));

        // When later traffic fires only feature 0, Then the frozen baseline stays and drift moves towards 1
        s.record(SparseCodes.fromPadded("s", 3, 4, 1, new int[] {0, 0, 0, 0}, new float[] {1, 1, 1, 1}, 0));
        assertThat(s.baselineDensity(1).orElseThrow()).isCloseTo(0.75, within(1e-6));
        assertThat(s.drift().orElseThrow()).isGreaterThan(0.25); // JS = 0.311 by hand
    }

    private static SparseCodes fourTokens() {
        return SparseCodes.fromPadded("s", 3, 4, 2, new int[] {1, -1, 1, 2, -1, -1, 1, -1}, new float[] {1f, 0f, 2f, 3f, 0f, 0f, 4f, 0f}, 0);
    }

    @Test
    void firesAndRatesCountTokensOnWhichAFeatureIsActive() {
        FeatureStats s = new FeatureStats("s", 3, Optional.empty(), 1e12, 1_000);

        s.record(fourTokens());

        assertThat(s.fires(1)).isEqualTo(3);
        assertThat(s.fires(2)).isEqualTo(1);
        assertThat(s.fires(0)).isZero();
        assertThat(s.tokens()).isEqualTo(4);
        assertThat(s.fireRate(1)).isCloseTo(0.75, within(1e-9));
        assertThat(s.fireRate(2)).isCloseTo(0.25, within(1e-9));
        assertThat(s.topFeatures(5)).containsExactly(1, 2);
    }

    @Test
    void ratesForgetOldTrafficWithTheConfiguredHalfLife() {
        // Given feature 1 fired on all of 4 tokens, then 4 tokens without it, with a half-life of 4 tokens
        FeatureStats s = new FeatureStats("s", 3, Optional.empty(), 4, 1_000);
        s.record(SparseCodes.fromPadded("s", 3, 4, 1, new int[] {1, 1, 1, 1}, new float[] {1, 1, 1, 1}, 0));

        s.record(SparseCodes.fromPadded("s", 3, 4, 1, new int[] {-1, -1, -1, -1}, new float[] {0, 0, 0, 0}, 0));

        // Then the rate is (4·0.5) / (4·0.5 + 4) = 1/3
        assertThat(s.fireRate(1)).isCloseTo(1.0 / 3, within(1e-9));
    }

    @Test
    void deadFeaturesAreThoseSilentOverTheWindow() {
        FeatureStats s = new FeatureStats("s", 3, Optional.empty(), 1e12, 2);

        s.record(fourTokens());

        // feature 0 never fired; feature 2 last fired at token 1 (< 4 - 2); feature 1 at token 3
        assertThat(s.deadFeatures()).isEqualTo(2);
    }

    @Test
    void driftIsZeroForTheBaselineDistributionAndOneForADisjointOne() {
        FeatureStats same = new FeatureStats("s", 3, Optional.of(new float[] {0f, 0.3f, 0.1f}), 1e12, 1_000);
        FeatureStats disjoint = new FeatureStats("s", 3, Optional.of(new float[] {0.5f, 0f, 0f}), 1e12, 1_000);

        same.record(fourTokens());
        disjoint.record(fourTokens());

        assertThat(same.drift().orElseThrow()).isCloseTo(0.0, within(1e-9)); // live 3:1 == baseline 0.3:0.1
        assertThat(disjoint.drift().orElseThrow()).isCloseTo(1.0, within(1e-9));
        assertThat(new FeatureStats("s", 3, Optional.empty(), 1e12, 1).drift()).isEmpty();
    }

    @Test
    void fvuIsResidualOverTotalVariance() {
        FeatureStats s = new FeatureStats("s", 3, Optional.empty(), 1e12, 1_000);

        // x = (1, 0) and (-1, 0), mean 0, total variance 2; reconstruction 0 leaves all of it
        s.recordReconstruction(new float[] {1, 0}, new float[] {0, 0});
        s.recordReconstruction(new float[] {-1, 0}, new float[] {0, 0});

        assertThat(s.fvu().orElseThrow()).isCloseTo(1.0, within(1e-3));
        FeatureStats perfect = new FeatureStats("s", 3, Optional.empty(), 1e12, 1_000);
        perfect.recordReconstruction(new float[] {1, 0}, new float[] {1, 0});
        perfect.recordReconstruction(new float[] {-1, 0}, new float[] {-1, 0});
        assertThat(perfect.fvu().orElseThrow()).isCloseTo(0.0, within(1e-12));
    }

    @Test
    void watchedFeaturesCountEveryTokenAndTheRestComeFromTheSample() {
        // Given an SAE on the watched-feature encode watching feature 1 of 3
        FeatureStats s = new FeatureStats("s", 3, Optional.empty(), 1e12, 1_000, 0);
        int[] watched = {1};

        // When 4 tokens are decided on their feature-1 codes (it fires on tokens 0, 1 and 3) and tokens 1 and 2 were
        // sampled and encoded whole (token 1: {1, 2}, token 2: {0})
        s.recordWatched(SparseCodes.fromColumns("s", 3, 4, watched, new float[] {1f, 2f, 0f, 4f}), watched);
        s.recordSample(SparseCodes.fromPadded("s", 3, 2, 2, new int[] {1, 2, 0, -1}, new float[] {2f, 3f, 5f, 0f}, 0), new long[] {1, 2});

        // Then feature 1 is exact over every token, features 0 and 2 are rated on the two sampled tokens
        assertThat(s.tokens()).isEqualTo(4);
        assertThat(s.sampledTokens()).isEqualTo(2);
        assertThat(s.exact(1)).isTrue();
        assertThat(s.exact(2)).isFalse();
        assertThat(s.fires(1)).isEqualTo(3);
        assertThat(s.sampledFires(1)).isEqualTo(1);
        assertThat(s.fireRate(1)).isCloseTo(0.75, within(1e-9));
        assertThat(s.fireRate(0)).isCloseTo(0.5, within(1e-9));
        assertThat(s.fireRate(2)).isCloseTo(0.5, within(1e-9));
        assertThat(s.topFeatures(3)).containsExactlyInAnyOrder(0, 1, 2);
    }

    @Test
    void aNewlyWatchedFeatureStartsFromTheSampledRate() {
        // Given feature 2 seen in the sample on half the sampled tokens while only feature 1 was watched
        FeatureStats s = new FeatureStats("s", 3, Optional.empty(), 1e12, 1_000, 0);
        s.recordWatched(SparseCodes.fromColumns("s", 3, 4, new int[] {1}, new float[4]), new int[] {1});
        s.recordSample(SparseCodes.fromPadded("s", 3, 2, 1, new int[] {2, -1}, new float[] {1f, 0f}, 0), new long[] {0, 1});

        // When feature 2 becomes watched and does not fire on the next 4 tokens
        s.recordWatched(SparseCodes.fromColumns("s", 3, 4, new int[] {1, 2}, new float[8]), new int[] {1, 2});

        // Then its exact rate went on from the sample's 0.5 over the first 4 tokens: 2 fires in 8 tokens
        assertThat(s.exact(2)).isTrue();
        assertThat(s.fireRate(2)).isCloseTo(0.25, within(1e-9));
        assertThat(s.fires(2)).isZero();
    }

    @Test
    void sampledTokensAreWeightedByTheirAgeInTheStream() {
        // Given a half-life of 1 token, feature 0 fired in a sample taken at stream position 0, 2 tokens ago
        FeatureStats s = new FeatureStats("s", 1, Optional.empty(), 1, 1_000, 0);
        s.recordWatched(SparseCodes.fromColumns("s", 1, 3, new int[0], new float[0]), new int[0]);
        s.recordSample(SparseCodes.fromPadded("s", 1, 1, 1, new int[] {0}, new float[] {1f}, 0), new long[] {0});

        // Then its recent rate is the sample's own (1 of 1 sampled token), and dead features see the fire at position 0
        assertThat(s.fireRate(0)).isCloseTo(1.0, within(1e-9));
        assertThat(s.deadFeatures()).isZero();
    }

    @Test
    void decayedRatesStayExactWhenTheDecayedCountsAreRescaled() {
        // Given a half-life of 2 tokens (the counts' unit grows by sqrt(2) a token and is rescaled past 1e150, i.e. every
        // ~1,000 tokens) and 3,000 one-token records, feature 1 firing on every third token, feature 2 watched on none
        FeatureStats s = new FeatureStats("s", 3, Optional.empty(), 2, 1_000_000);
        double decay = Math.pow(0.5, 0.5);
        double fired = 0;
        double seen = 0;
        for (int t = 0; t < 3_000; t++) {
            boolean fires = t % 3 == 0;
            s.recordWatched(SparseCodes.fromPadded("s", 3, 1, 1, new int[] {fires ? 1 : -1}, new float[] {fires ? 1 : 0}, 0), new int[] {1, 2});
            fired = fired * decay + (fires ? 1 : 0);
            seen = seen * decay + 1;

            // Then the rate equals the directly decayed one after every record, across the rescales
            assertThat(s.fireRate(1)).as("token %d", t).isCloseTo(fired / seen, within(1e-9));
        }
        assertThat(s.fireRate(2)).isZero();
        assertThat(s.fires(1)).isEqualTo(1_000);
    }
}
