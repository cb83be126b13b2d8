package io.saeguard.bench;

import java.io.IOException;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * The process's memory at one step: Java heap in use after a full GC, the JVM's direct and
 * memory-mapped buffer pools, and the kernel's resident set from {@code /proc/self/status}
 * ({@code VmRSS = RssAnon + RssFile + RssShmem}: anonymous memory such as heap, malloc and direct
 * buffers, versus file pages such as memory-mapped weights and shared libraries).
 */
record MemorySnapshot(String step, long heapUsed, long directPool, long mappedPool, long vmRss, long rssAnon, long rssFile) {

    static MemorySnapshot take(String step) throws IOException {
        System.gc();
        System.gc();
        long heap = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
        long direct = 0;
        long mapped = 0;
        for (BufferPoolMXBean pool : ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class)) {
            if (pool.getName().equals("direct")) {
                direct = pool.getMemoryUsed();
            } else if (pool.getName().equals("mapped")) {
                mapped = pool.getMemoryUsed();
            }
        }
        List<String> status = Files.readAllLines(Path.of("/proc/self/status"));
        return new MemorySnapshot(step, heap, direct, mapped, kib(status, "VmRSS:"), kib(status, "RssAnon:"), kib(status, "RssFile:"));
    }

    /** A {@code /proc/self/status} field in bytes (the kernel reports kB = KiB). */
    private static long kib(List<String> status, String key) {
        for (String line : status) {
            if (line.startsWith(key)) {
                return Long.parseLong(line.substring(key.length()).trim().split("\\s+")[0]) * 1024;
            }
        }
        throw new IllegalStateException(key + " not in /proc/self/status (not Linux?)");
    }

    static String tableHeader() {
        return "| step | heap used after GC | direct buffers | mapped buffers | VmRSS | RssAnon | RssFile |\n"
                + "|---|---:|---:|---:|---:|---:|---:|";
    }

    String tableRow() {
        return String.format(Locale.ROOT, "| %s | %s | %s | %s | %s | %s | %s |", step, mib(heapUsed), mib(directPool), mib(mappedPool),
                mib(vmRss), mib(rssAnon), mib(rssFile));
    }

    private static String mib(long bytes) {
        return String.format(Locale.ROOT, "%,.0f MiB", bytes / 1048576.0);
    }
}
