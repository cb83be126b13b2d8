package io.saeguard.sae.engine;

import java.util.Locale;
import java.util.Objects;

/**
 * Where encoding runs: {@code auto} (the first CUDA GPU when DJL finds one, else the CPU),
 * {@code cpu}, or {@code gpu} / {@code gpu:N}.
 */
public record DeviceSpec(Kind kind, int gpuIndex) {
    public enum Kind {
        AUTO,
        CPU,
        GPU
    }

    public DeviceSpec {
        Objects.requireNonNull(kind, "kind");
        if (gpuIndex < 0) {
            throw new IllegalArgumentException("GPU index must be >= 0");
        }
    }

    public static final DeviceSpec AUTO = new DeviceSpec(Kind.AUTO, 0);
    public static final DeviceSpec CPU = new DeviceSpec(Kind.CPU, 0);

    /** Parses {@code auto}, {@code cpu}, {@code gpu}, {@code gpu:N} (also {@code cuda}, {@code cuda:N}). */
    public static DeviceSpec parse(String text) {
        String s = text.trim().toLowerCase(Locale.ROOT);
        if (s.equals("auto")) {
            return AUTO;
        }
        if (s.equals("cpu")) {
            return CPU;
        }
        if (s.equals("gpu") || s.equals("cuda")) {
            return new DeviceSpec(Kind.GPU, 0);
        }
        if (s.startsWith("gpu:") || s.startsWith("cuda:")) {
            try {
                return new DeviceSpec(Kind.GPU, Integer.parseInt(s.substring(s.indexOf(':') + 1)));
            } catch (NumberFormatException e) {
                // fall through to the error
            }
        }
        throw new IllegalArgumentException("device must be auto, cpu, gpu or gpu:N, found '" + text + "'");
    }

    @Override
    public String toString() {
        return switch (kind) {
            case AUTO -> "auto";
            case CPU -> "cpu";
            case GPU -> "gpu:" + gpuIndex;
        };
    }
}
