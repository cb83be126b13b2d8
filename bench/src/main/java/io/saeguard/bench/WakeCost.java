package io.saeguard.bench;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.locks.LockSupport;

/**
 * What pacing costs: a thread that sleeps until each of {@code RATE} evenly spaced times a second, as the load
 * generator's open-loop phases did for every record, for {@code SECONDS}, and the CPU time it used (its own, from the
 * JVM). On the 2-core benchmark VM a wake-up cost ~20–25 µs of CPU, which is why {@link LoadGenerator} paces on a
 * grid ({@code --pace-us}) rather than per record.
 *
 * <pre>java -cp bench/target/benchmarks.jar io.saeguard.bench.WakeCost 8000 1000 [SECONDS]</pre>
 * prints one line per rate.
 */
public final class WakeCost {
    private WakeCost() {
    }

    public static void main(String[] args) {
        if (args.length == 0) {
            System.err.println("usage: WakeCost RATE_PER_S [RATE_PER_S ...] [--seconds S]");
            System.exit(2);
        }
        double seconds = 5;
        List<Double> rates = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            if ("--seconds".equals(args[i]) && i + 1 < args.length) {
                seconds = Double.parseDouble(args[++i]);
            } else {
                rates.add(Double.parseDouble(args[i]));
            }
        }
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        for (double rate : rates) {
            if (!(rate > 0)) {
                throw new IllegalArgumentException("a rate must be > 0 per second, got " + rate);
            }
            long interval = (long) (1e9 / rate);
            long span = (long) (seconds * 1e9);
            long cpu0 = mx.getCurrentThreadCpuTime();
            long t0 = System.nanoTime();
            long wakes = 0;
            for (long k = 0; k * interval < span; k++) {
                long at = t0 + k * interval;
                long wait;
                while ((wait = at - System.nanoTime()) > 0) {
                    LockSupport.parkNanos(wait);
                }
                wakes++;
            }
            long cpu = mx.getCurrentThreadCpuTime() - cpu0;
            System.out.printf(Locale.ROOT, "%,.0f wake-ups/s for %.0f s: %.3f cores, %.1f us of CPU per wake-up%n", rate, seconds,
                    cpu / (seconds * 1e9), cpu / 1e3 / wakes);
        }
    }
}
