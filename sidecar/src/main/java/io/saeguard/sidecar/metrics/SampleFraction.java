package io.saeguard.sidecar.metrics;

import java.lang.management.ManagementFactory;
import java.util.concurrent.TimeUnit;
import java.util.function.DoubleSupplier;

/**
 * The share of tokens encoded whole for the feature metrics (the full-code sample, {@link FullCodeSampler}): never
 * below {@code metrics.full_encode_fraction}, and more, up to {@code metrics.full_encode_max_fraction}, while the
 * machine has CPU to spare. Once a second it reads the machine's CPU load (the share of all cores busy since the last
 * reading) and whether the full encodes kept up (no group had to be encoded inline on the engine thread since then):
 * <ul>
 *   <li>load under {@value #SPARE_BELOW} and the encodes keeping up: the fraction doubles (up to the maximum);</li>
 *   <li>load over {@value #BUSY_ABOVE}, the load unknown, or the encodes falling behind: it halves (down to the floor);</li>
 *   <li>in between it holds, so that the sample's own CPU does not make it swing.</li>
 * </ul>
 * A backlog in the pipeline itself (a batch that filled before its {@code max_delay}, or, with
 * {@code batching.flush_on_idle}, a poll's end that found the next poll's records already queued: records arrived faster
 * than the engine took them) puts it back on the floor at once, without waiting for the next reading: a burst after a quiet
 * spell (a backlog to drain, a traffic spike) otherwise found the sample grown and paid up to four times the floor's
 * full encodes for the seconds the halving took.
 * A larger sample only lowers the noise of the sampled series (top-N, unwatched rates, drift, dead features): they are
 * rates over sampled tokens, and {@code saeguard_feature_sampled_tokens_total} counts what they were computed on. No
 * decision reads the sample.
 *
 * <p>Not thread-safe: the engine thread owns it.
 */
public final class SampleFraction {
    /** Below this machine CPU load (0–1) the sample may grow. */
    public static final double SPARE_BELOW = 0.5;
    /** Above this machine CPU load the sample shrinks toward its floor. */
    public static final double BUSY_ABOVE = 0.8;
    /** How often the fraction is reconsidered. */
    public static final long INTERVAL_NANOS = TimeUnit.SECONDS.toNanos(1);

    private final double floor;
    private final double max;
    private final DoubleSupplier machineLoad;
    private double current;
    private long lastNanos;
    private boolean started;
    private boolean fellBehind;
    private boolean backlogged;

    /**
     * @param floor       {@code metrics.full_encode_fraction}: the fraction at least sampled (0: no sample, never grows)
     * @param max         {@code metrics.full_encode_max_fraction}, at least {@code floor}
     * @param machineLoad the machine's CPU load since its last call, 0–1; NaN or negative when unknown
     */
    public SampleFraction(double floor, double max, DoubleSupplier machineLoad) {
        if (!(floor >= 0 && floor <= 1) || !(max >= floor && max <= 1)) {
            throw new IllegalArgumentException("need 0 <= floor (" + floor + ") <= max (" + max + ") <= 1");
        }
        this.floor = floor;
        this.max = floor > 0 ? max : 0;
        this.machineLoad = machineLoad;
        this.current = floor;
    }

    /** The machine's CPU load from the JVM's operating-system bean (container-aware on Linux); NaN where the JVM has none. */
    public static DoubleSupplier machineCpuLoad() {
        if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
            return os::getCpuLoad;
        }
        return () -> Double.NaN;
    }

    /** A group of the sample was encoded inline on the engine thread (the metrics thread's queue was full): shrink at the next update. */
    public void fellBehind() {
        fellBehind = true;
    }

    /** The pipeline has a backlog (a batch filled before its max delay): the next update returns to the floor at once. */
    public void backlogged() {
        backlogged = true;
    }

    /**
     * The fraction to sample at now; reconsidered at most once per {@link #INTERVAL_NANOS}, except that a backlog
     * ({@link #backlogged()}) returns it to the floor at the next call and starts a new interval.
     */
    public double update(long nowNanos) {
        if (max <= floor) {
            return current;
        }
        if (backlogged) {
            backlogged = false;
            fellBehind = false;
            current = floor;
            if (started) {
                lastNanos = nowNanos;
                machineLoad.getAsDouble(); // the next reading covers the time since the drop
            }
            return current;
        }
        if (!started) {
            started = true;
            lastNanos = nowNanos;
            machineLoad.getAsDouble(); // the first reading starts the interval
            return current;
        }
        if (nowNanos - lastNanos < INTERVAL_NANOS) {
            return current;
        }
        lastNanos = nowNanos;
        double load = machineLoad.getAsDouble();
        if (fellBehind || !(load >= 0) || load > BUSY_ABOVE) {
            current = Math.max(floor, current / 2);
        } else if (load < SPARE_BELOW) {
            current = Math.min(max, current * 2);
        }
        fellBehind = false;
        return current;
    }

    /** The fraction sampled now. */
    public double current() {
        return current;
    }
}
