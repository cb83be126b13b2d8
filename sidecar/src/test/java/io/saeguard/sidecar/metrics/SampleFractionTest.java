package io.saeguard.sidecar.metrics;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

class SampleFractionTest {
    private static final long SECOND = SampleFraction.INTERVAL_NANOS;

    private final AtomicReference<Double> load = new AtomicReference<>(0.1);
    private final SampleFraction fraction = new SampleFraction(0.01, 0.05, load::get);

    @Test
    void onAnIdleMachineTheSampleDoublesEverySecondUpToItsMaximum() {
        // Given the first reading (it only starts the interval)
        assertThat(fraction.update(0)).isEqualTo(0.01);

        // When the machine stays at 10 % for 4 s, read every half second
        double[] seen = new double[8];
        for (int i = 1; i <= 8; i++) {
            seen[i - 1] = fraction.update(i * SECOND / 2);
        }

        // Then it changed once a second, never past the maximum
        assertThat(seen).containsExactly(0.01, 0.02, 0.02, 0.04, 0.04, 0.05, 0.05, 0.05);
    }

    @Test
    void aBusyMachineOrAnUnknownLoadHalvesItBackToTheFloorAndTheMiddleBandHolds() {
        // Given grown to the maximum
        for (int i = 0; i <= 4; i++) {
            fraction.update(i * SECOND);
        }
        assertThat(fraction.current()).isEqualTo(0.05);

        // When the load sits between the bands
        load.set(0.6);
        // Then it holds
        assertThat(fraction.update(5 * SECOND)).isEqualTo(0.05);

        // When the machine is busy
        load.set(0.9);
        assertThat(fraction.update(6 * SECOND)).isEqualTo(0.025);
        // and when the load cannot be read (the bean answers negative)
        load.set(-1.0);
        assertThat(fraction.update(7 * SECOND)).isEqualTo(0.0125);
        load.set(Double.NaN);
        // Then it never goes below the floor
        assertThat(fraction.update(8 * SECOND)).isEqualTo(0.01);
        assertThat(fraction.update(9 * SECOND)).isEqualTo(0.01);
    }

    @Test
    void fullEncodesFallingBehindShrinkItEvenOnAnIdleMachine() {
        for (int i = 0; i <= 2; i++) {
            fraction.update(i * SECOND);
        }
        assertThat(fraction.current()).isEqualTo(0.04);

        // When a sample's full encode had to run inline (the metrics thread's queue was full)
        fraction.fellBehind();

        // Then the next update halves it although the machine idles, and the one after may grow again
        assertThat(fraction.update(3 * SECOND)).isEqualTo(0.02);
        assertThat(fraction.update(4 * SECOND)).isEqualTo(0.04);
    }

    @Test
    void aBacklogPutsItBackOnTheFloorAtOnceAndTheIntervalRestarts() {
        for (int i = 0; i <= 3; i++) {
            fraction.update(i * SECOND);
        }
        assertThat(fraction.current()).isEqualTo(0.05);

        // When a batch fills before its max delay, a tenth of a second after the last reading
        fraction.backlogged();

        // Then the very next call is at the floor, not a second later and not halved
        assertThat(fraction.update(3 * SECOND + SECOND / 10)).isEqualTo(0.01);
        // and the interval restarts from the drop: no reading until a second after it, then growth resumes on an idle machine
        assertThat(fraction.update(4 * SECOND)).isEqualTo(0.01);
        assertThat(fraction.update(4 * SECOND + SECOND / 10)).isEqualTo(0.02);
    }

    @Test
    void aFixedOrDisabledSampleNeverMoves() {
        SampleFraction fixed = new SampleFraction(0.01, 0.01, load::get);
        SampleFraction off = new SampleFraction(0, 0.5, load::get);
        for (int i = 0; i <= 5; i++) {
            fixed.update(i * SECOND);
            off.update(i * SECOND);
        }
        assertThat(fixed.current()).isEqualTo(0.01);
        assertThat(off.current()).isZero();
        assertThatThrownBy(() -> new SampleFraction(0.1, 0.05, load::get)).isInstanceOf(IllegalArgumentException.class);
    }
}
