package io.saeguard.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * CPU time of the machine and of named processes (and their threads) at one instant, read from
 * {@code /proc}, so that a measurement window can say where the two cores went: to the system under
 * test (and which of its threads), the broker, the load generator, or other tenants of the machine.
 * Times are in clock ticks ({@code USER_HZ}, 100 per second on Linux).
 *
 * @param nanos      {@link System#nanoTime} when taken
 * @param machineBusy machine-wide non-idle ticks (all CPUs; {@code /proc/stat})
 * @param processes  per watched process: its total ticks and its threads' ticks by thread name
 * @param loadavg    {@code /proc/loadavg} 1, 5, 15 minutes
 */
record ProcSnapshot(long nanos, long machineBusy, Map<String, Process> processes, double[] loadavg) {
    static final double TICKS_PER_SECOND = 100.0;

    /**
     * One process.
     *
     * @param ticks   user + system ticks of the whole process
     * @param threads ticks per thread name (threads of the same name summed; names as in {@code comm})
     * @param rssKiB  resident set size
     */
    record Process(long ticks, Map<String, Long> threads, long rssKiB) {
    }

    static ProcSnapshot take(Map<String, Long> pids) {
        long now = System.nanoTime();
        Map<String, Process> ps = new LinkedHashMap<>();
        pids.forEach((name, pid) -> {
            Process p = process(pid);
            if (p != null) {
                ps.put(name, p);
            }
        });
        return new ProcSnapshot(now, readMachineBusy(), ps, readLoadavg());
    }

    private static Process process(long pid) {
        Path dir = Path.of("/proc", Long.toString(pid));
        long[] total = ticks(dir.resolve("stat"));
        if (total == null) {
            return null;
        }
        Map<String, Long> threads = new HashMap<>();
        try (var tasks = Files.list(dir.resolve("task"))) {
            for (Path t : (Iterable<Path>) tasks::iterator) {
                long[] tt = ticks(t.resolve("stat"));
                String comm = read(t.resolve("comm")).strip();
                if (tt != null) {
                    // Kafka/JVM name threads with counters ("kafka-producer-network-thread | p-1", "C2 CompilerThread0"):
                    // keep the name as the kernel truncates it (15 chars), summing equal names.
                    threads.merge(comm.isEmpty() ? "?" : comm, tt[0] + tt[1], Long::sum);
                }
            }
        } catch (IOException | RuntimeException e) {
            // a thread or the process ended while listing: keep what we have
        }
        long rss = 0;
        for (String line : read(dir.resolve("status")).split("\n")) {
            if (line.startsWith("VmRSS:")) {
                rss = Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        return new Process(total[0] + total[1], threads, rss);
    }

    /** utime, stime (fields 14 and 15 of {@code stat}; the command name in parentheses may contain spaces). */
    private static long[] ticks(Path stat) {
        String s = read(stat);
        int close = s.lastIndexOf(')');
        if (close < 0) {
            return null;
        }
        String[] f = s.substring(close + 2).split(" ");
        // f[0] is field 3 (state): utime is field 14 -> f[11], stime field 15 -> f[12]
        return new long[] {Long.parseLong(f[11]), Long.parseLong(f[12])};
    }

    private static long readMachineBusy() {
        String first = read(Path.of("/proc/stat")).split("\n")[0];
        String[] f = first.trim().split("\\s+");
        long busy = 0;
        // cpu user nice system idle iowait irq softirq steal ...
        for (int i = 1; i < f.length && i <= 8; i++) {
            if (i != 4 && i != 5) {
                busy += Long.parseLong(f[i]);
            }
        }
        return busy;
    }

    private static double[] readLoadavg() {
        String[] f = read(Path.of("/proc/loadavg")).trim().split("\\s+");
        return new double[] {Double.parseDouble(f[0]), Double.parseDouble(f[1]), Double.parseDouble(f[2])};
    }

    private static String read(Path p) {
        try {
            return Files.readString(p);
        } catch (IOException e) {
            return "";
        }
    }

    /**
     * CPU use between two snapshots, in cores (1.0 = one core busy for the whole interval): the machine,
     * each watched process, the rest of the machine ("others"), and each process's busiest threads.
     */
    static Map<String, Object> usage(ProcSnapshot a, ProcSnapshot b, int topThreads) {
        double seconds = (b.nanos - a.nanos) / 1e9;
        Map<String, Object> out = new LinkedHashMap<>();
        double machine = (b.machineBusy - a.machineBusy) / TICKS_PER_SECOND / seconds;
        out.put("machine_cores", round(machine));
        double ours = 0;
        Map<String, Object> procs = new LinkedHashMap<>();
        Map<String, Object> threads = new LinkedHashMap<>();
        for (Map.Entry<String, Process> e : b.processes.entrySet()) {
            Process before = a.processes.get(e.getKey());
            if (before == null) {
                continue;
            }
            double cores = (e.getValue().ticks() - before.ticks()) / TICKS_PER_SECOND / seconds;
            ours += cores;
            procs.put(e.getKey(), round(cores));
            List<Map.Entry<String, Double>> ts = new ArrayList<>();
            e.getValue().threads().forEach((name, ticks) -> {
                double c = (ticks - before.threads().getOrDefault(name, 0L)) / TICKS_PER_SECOND / seconds;
                if (c > 0.005) {
                    ts.add(Map.entry(name, c));
                }
            });
            ts.sort((x, y) -> Double.compare(y.getValue(), x.getValue()));
            Map<String, Object> top = new LinkedHashMap<>();
            ts.stream().limit(topThreads).forEach(t -> top.put(t.getKey(), round(t.getValue())));
            threads.put(e.getKey(), top);
        }
        out.put("processes_cores", procs);
        out.put("others_cores", round(Math.max(0, machine - ours)));
        out.put("threads_cores", threads);
        out.put("loadavg_start", a.loadavg);
        out.put("loadavg_end", b.loadavg);
        return out;
    }

    private static double round(double v) {
        return Math.round(v * 1000) / 1000.0;
    }
}
