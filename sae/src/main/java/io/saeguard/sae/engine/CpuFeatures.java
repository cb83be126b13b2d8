package io.saeguard.sae.engine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

/** What the CPU offers for a BF16 GEMM, read from {@code /proc/cpuinfo} (Linux x86; elsewhere: unknown, treated as absent). */
final class CpuFeatures {
    private CpuFeatures() {
    }

    /** True when the CPU has AVX512-BF16 or AMX-BF16, so oneDNN runs a BF16 GEMM natively. */
    static boolean hasNativeBf16() {
        try {
            return hasNativeBf16(Files.readAllLines(Path.of("/proc/cpuinfo")));
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    /** The same, from the lines of a {@code /proc/cpuinfo}. */
    static boolean hasNativeBf16(List<String> cpuinfo) {
        Set<String> flags = cpuinfo.stream().filter(l -> l.startsWith("flags")).findFirst()
                .map(l -> l.substring(l.indexOf(':') + 1).trim())
                .map(f -> Arrays.stream(f.split("\\s+")).collect(Collectors.toSet())).orElse(Set.of());
        return flags.contains("avx512_bf16") || flags.contains("amx_bf16");
    }
}
