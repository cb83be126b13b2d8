package io.saeguard.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import io.saeguard.sae.engine.DeviceSpec;
import io.saeguard.sae.engine.EngineOptions;
import io.saeguard.sae.engine.SaeEngine;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * Turns the JSON of an {@link EncodeBenchmark} run ({@code -rf json}) into a markdown section: the
 * machine, and per shape and batch the encode and matmul times, encode tokens/s, GFLOP/s of both
 * (2·batch·d_in·d_sae per op) and the encode/matmul throughput ratio, followed by the two targets.
 *
 * <p>Times are the median of the measurement iterations (with their range), not JMH's mean: on a
 * shared machine a neighbour's burst inflates one iteration, and the median shrugs it off.
 *
 * <p>Usage: {@code BenchReport results.json [--readme bench/README.md]}: prints the section, and with
 * {@code --readme} also replaces the text between {@value #BEGIN} and {@value #END} in that file.
 * {@code BenchReport --merge all.json part1.json part2.json …} concatenates JMH result files (encode.sh
 * runs JMH once per cell, so encode and matmul of a cell are measured back to back).
 */
public final class BenchReport {
    static final String BEGIN = "<!-- BEGIN encode-results (written by BenchReport) -->";
    static final String END = "<!-- END encode-results -->";
    static final double THROUGHPUT_TARGET = 0.8;
    static final double LATENCY_TARGET = 1.2;

    private BenchReport() {
    }

    /** Median, fastest and slowest measurement iteration, in seconds per op. */
    private record Timing(double seconds, double min, double max) {
    }

    private record Row(SaeShape shape, int batch, String precision, Timing encode, Timing matmul) {
        double tokensPerSecond() {
            return batch / encode.seconds();
        }

        double encodeGflops() {
            return shape.gemmFlops(batch) / encode.seconds() / 1e9;
        }

        double matmulGflops() {
            return shape.gemmFlops(batch) / matmul.seconds() / 1e9;
        }

        /** Encode throughput over matmul throughput (= matmul time over encode time). */
        double ratio() {
            return matmul.seconds() / encode.seconds();
        }
    }

    public static void main(String[] args) throws IOException {
        if (args.length >= 2 && args[0].equals("--merge")) {
            merge(Path.of(args[1]), Arrays.stream(args, 2, args.length).map(Path::of).toList());
            return;
        }
        if (args.length != 1 && !(args.length == 3 && args[1].equals("--readme"))) {
            System.err.println("usage: BenchReport results.json [--readme README.md] | BenchReport --merge all.json part.json...");
            System.exit(2);
        }
        Path json = Path.of(args[0]);
        String section = render(json);
        System.out.println(section);
        if (args.length == 3) {
            Path readme = Path.of(args[2]);
            String text = Files.readString(readme);
            int b = text.indexOf(BEGIN);
            int e = text.indexOf(END);
            if (b < 0 || e < b) {
                throw new IllegalStateException(readme + " has no '" + BEGIN + "' ... '" + END + "' block to replace");
            }
            Files.writeString(readme, text.substring(0, b + BEGIN.length()) + "\n" + section + "\n" + text.substring(e));
            System.err.println("updated " + readme);
        }
    }

    static void merge(Path out, List<Path> parts) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ArrayNode all = json.createArrayNode();
        for (Path p : parts) {
            json.readTree(p.toFile()).forEach(all::add);
        }
        json.writerWithDefaultPrettyPrinter().writeValue(out.toFile(), all);
    }

    static String render(Path json) throws IOException {
        JsonNode runs = new ObjectMapper().readTree(json.toFile());
        Map<String, Timing[]> byParams = new LinkedHashMap<>();
        String jdk = "?";
        String vm = "?";
        Optional<Integer> threadsProperty = Optional.empty();
        for (JsonNode run : runs) {
            String method = run.get("benchmark").asText();
            method = method.substring(method.lastIndexOf('.') + 1);
            String key = run.get("params").get("shape").asText() + "/" + run.get("params").get("batch").asText() + "/"
                    + run.get("params").path("precision").asText("f32");
            Timing[] pair = byParams.computeIfAbsent(key, k -> new Timing[2]);
            pair[method.equals("encode") ? 0 : 1] = timing(run.get("primaryMetric"));
            jdk = run.get("jdkVersion").asText();
            vm = run.get("vmName").asText() + " " + run.get("vmVersion").asText();
            for (JsonNode arg : run.get("jvmArgs")) {
                if (arg.asText().startsWith("-Dsaeguard.bench.threads=")) {
                    threadsProperty = Optional.of(Integer.parseInt(arg.asText().substring(arg.asText().indexOf('=') + 1)));
                }
            }
        }
        List<Row> rows = new ArrayList<>();
        for (Map.Entry<String, Timing[]> e : byParams.entrySet()) {
            if (e.getValue()[0] == null || e.getValue()[1] == null) {
                continue;
            }
            String[] k = e.getKey().split("/");
            rows.add(new Row(SaeShape.parse(k[0]), Integer.parseInt(k[1]), k[2], e.getValue()[0], e.getValue()[1]));
        }
        List<Row> bf16 = rows.stream().filter(r -> r.precision().equals("bf16")).toList();
        rows.removeIf(r -> !r.precision().equals("f32"));
        rows.sort(Comparator.comparingLong((Row r) -> (long) r.shape().dIn() * r.shape().dSae()).thenComparingInt(Row::batch));

        int cores = Runtime.getRuntime().availableProcessors();
        StringBuilder out = new StringBuilder();
        JsonNode first = runs.get(0);
        out.append(String.format(Locale.ROOT, "Measured %s on %s, %d cores (`nproc`), %s RAM; JDK %s (%s); libtorch %s (DJL 0.35, CPU, F32 unless marked BF16); "
                + "intra-op threads %d, inter-op 1. JMH %s, average time, %d fork(s) per cell, warmup %d×%s, measurement %d×%s; "
                + "times are the median iteration (fastest–slowest in brackets), rates are computed from the median. "
                + "Raw results: `results/%s`.%n%n",
                LocalDate.ofInstant(Files.getLastModifiedTime(json).toInstant(), ZoneOffset.UTC), cpuModel(), cores, memTotal(), jdk, vm,
                libtorchVersion(), threadsProperty.orElse(cores), first.path("jmhVersion").asText("?"), first.get("forks").asInt(),
                first.get("warmupIterations").asInt(), first.get("warmupTime").asText(), first.get("measurementIterations").asInt(),
                first.get("measurementTime").asText(), json.getFileName()));
        out.append("| d_in×d_sae | batch | encode µs/op | matmul µs/op | encode tokens/s | encode GFLOP/s | matmul GFLOP/s | encode/matmul |\n");
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for (Row r : rows) {
            out.append(String.format(Locale.ROOT, "| %s | %d | %s | %s | %,.0f | %.1f | %.1f | %.2f |%n", r.shape(), r.batch(),
                    micros(r.encode()), micros(r.matmul()), r.tokensPerSecond(), r.encodeGflops(), r.matmulGflops(), r.ratio()));
        }
        out.append('\n');
        out.append(targets(rows));
        if (!bf16.isEmpty()) {
            out.append("\nWith `engine.cpu_bf16` (`-p precision=bf16`): the same encode with its GEMM in BF16, against the F32 GEMM "
                    + "(the `matmul` column, measured in the same fork). Speed-up = F32 matmul time / BF16 encode time.\n\n");
            out.append("| d_in×d_sae | batch | BF16 encode µs/op | F32 matmul µs/op | BF16 encode tokens/s | speed-up over the F32 GEMM |\n");
            out.append("|---|---:|---:|---:|---:|---:|\n");
            bf16.stream().sorted(Comparator.comparingLong((Row r) -> (long) r.shape().dIn() * r.shape().dSae()).thenComparingInt(Row::batch))
                    .forEach(r -> out.append(String.format(Locale.ROOT, "| %s | %d | %s | %s | %,.0f | %.2f× |%n", r.shape(), r.batch(),
                            micros(r.encode()), micros(r.matmul()), r.tokensPerSecond(), r.ratio())));
        }
        return out.toString();
    }

    private static String targets(List<Row> rows) {
        StringBuilder out = new StringBuilder();
        List<Row> big = rows.stream().filter(r -> r.batch() >= 64).toList();
        if (!big.isEmpty()) {
            Row worst = big.stream().min(Comparator.comparingDouble(Row::ratio)).orElseThrow();
            long met = big.stream().filter(r -> r.ratio() >= THROUGHPUT_TARGET).count();
            out.append(String.format(Locale.ROOT, "- Target encode ≥ %.1f× matmul throughput at batch ≥ 64: %d of %d cells meet it; "
                    + "worst %.2f× (%s, batch %d).%n", THROUGHPUT_TARGET, met, big.size(), worst.ratio(), worst.shape(), worst.batch()));
        }
        List<Row> single = rows.stream().filter(r -> r.batch() == 1).toList();
        if (!single.isEmpty()) {
            out.append(String.format(Locale.ROOT, "- Target batch-1 encode latency ≤ %.1f× matmul:", LATENCY_TARGET));
            for (Row r : single) {
                double ratio = r.encode().seconds() / r.matmul().seconds();
                out.append(String.format(Locale.ROOT, " %s %.2f× (%s);", r.shape(), ratio, ratio <= LATENCY_TARGET ? "met" : "missed"));
            }
            out.setLength(out.length() - 1);
            out.append(".\n");
        }
        return out.toString();
    }

    private static Timing timing(JsonNode metric) {
        String unit = metric.get("scoreUnit").asText();
        List<Double> seconds = new ArrayList<>();
        for (JsonNode fork : metric.get("rawData")) {
            for (JsonNode iteration : fork) {
                seconds.add(secondsPerOp(iteration.asDouble(), unit));
            }
        }
        seconds.sort(Comparator.naturalOrder());
        int n = seconds.size();
        double median = n % 2 == 1 ? seconds.get(n / 2) : (seconds.get(n / 2 - 1) + seconds.get(n / 2)) / 2;
        return new Timing(median, seconds.get(0), seconds.get(n - 1));
    }

    private static double secondsPerOp(double score, String unit) {
        return switch (unit) {
            case "s/op" -> score;
            case "ms/op" -> score * 1e-3;
            case "us/op" -> score * 1e-6;
            case "ns/op" -> score * 1e-9;
            // Throughput mode: ops per time unit.
            case "ops/s" -> 1 / score;
            case "ops/ms" -> 1e-3 / score;
            case "ops/us" -> 1e-6 / score;
            default -> throw new IllegalArgumentException("unknown JMH unit " + unit);
        };
    }

    private static String micros(Timing t) {
        return String.format(Locale.ROOT, "%,.0f (%,.0f–%,.0f)", t.seconds() * 1e6, t.min() * 1e6, t.max() * 1e6);
    }

    private static String cpuModel() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
            if (line.startsWith("model name")) {
                return line.substring(line.indexOf(':') + 1).trim();
            }
        }
        return System.getProperty("os.arch");
    }

    private static String memTotal() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
            if (line.startsWith("MemTotal:")) {
                long kib = Long.parseLong(line.replaceAll("\\D", ""));
                return String.format(Locale.ROOT, "%.0f GiB", kib / 1048576.0);
            }
        }
        return "?";
    }

    /** Asks libtorch itself (starting the engine costs about a second). */
    private static String libtorchVersion() {
        try (SaeEngine engine = SaeEngine.start(EngineOptions.defaults(DeviceSpec.CPU))) {
            return engine.libtorchVersion();
        }
    }
}
