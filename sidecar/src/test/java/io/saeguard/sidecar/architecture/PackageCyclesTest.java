package io.saeguard.sidecar.architecture;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The packages of the main sources form no cycle: a package's dependencies (imports and fully qualified names of
 * {@code io.saeguard} classes, read from the source text) never lead back to it. A cycle is reported with the files
 * that make each of its edges.
 */
class PackageCyclesTest {
    private static final Pattern PACKAGE = Pattern.compile("^package (io\\.saeguard[a-z0-9_.]*);", Pattern.MULTILINE);
    /** A reference to a class: a package path of lower-case segments, then a capitalised name. */
    private static final Pattern REFERENCE = Pattern.compile("\\b(io\\.saeguard(?:\\.[a-z0-9_]+)*)\\.[A-Z]");

    @Test
    void mainPackagesFormNoCycle() throws IOException {
        // Given every main source file of every module
        Map<String, Map<String, Set<String>>> edges = dependencies(repositoryRoot());
        assertThat(edges).as("main packages found").containsKey("io.saeguard.sidecar.pipeline");

        // When the package graph's strongly connected components are computed
        List<Set<String>> cycles = cycles(edges);

        // Then each package is its own component
        StringBuilder report = new StringBuilder();
        for (Set<String> cycle : cycles) {
            report.append("cycle among ").append(cycle).append(":\n");
            for (String from : cycle) {
                edges.get(from).forEach((to, files) -> {
                    if (cycle.contains(to)) {
                        report.append("  ").append(from).append(" -> ").append(to).append(" in ").append(files).append('\n');
                    }
                });
            }
        }
        assertThat(cycles).as(report.toString()).isEmpty();
    }

    @Test
    void aCycleIsFound() {
        // Given a -> b -> c -> a and c -> d
        Map<String, Map<String, Set<String>>> edges = new TreeMap<>();
        edges.put("a", Map.of("b", Set.of("A.java")));
        edges.put("b", Map.of("c", Set.of("B.java")));
        edges.put("c", Map.of("a", Set.of("C.java"), "d", Set.of("C.java")));
        edges.put("d", Map.of());

        // Then exactly the three form a cycle
        assertThat(cycles(edges)).containsExactly(new TreeSet<>(Set.of("a", "b", "c")));
    }

    /** Package to package it depends on to the files that make the dependency (main sources only). */
    static Map<String, Map<String, Set<String>>> dependencies(Path root) throws IOException {
        Map<String, Map<String, Set<String>>> edges = new TreeMap<>();
        List<Path> sources;
        try (Stream<Path> walk = Files.walk(root)) {
            sources = walk.filter(p -> p.toString().endsWith(".java") && p.toString().contains("/src/main/java/")
                    && !p.toString().contains("/target/")).toList();
        }
        for (Path file : sources) {
            String text = read(file);
            Matcher pm = PACKAGE.matcher(text);
            if (!pm.find()) {
                continue;
            }
            String from = pm.group(1);
            Map<String, Set<String>> out = edges.computeIfAbsent(from, k -> new TreeMap<>());
            Matcher rm = REFERENCE.matcher(text.substring(pm.end()));
            while (rm.find()) {
                String to = rm.group(1);
                if (!to.equals(from)) {
                    out.computeIfAbsent(to, k -> new TreeSet<>()).add(root.relativize(file).toString());
                }
            }
        }
        return edges;
    }

    /** Strongly connected components of more than one package (Tarjan's algorithm). */
    static List<Set<String>> cycles(Map<String, Map<String, Set<String>>> edges) {
        Map<String, Integer> index = new HashMap<>();
        Map<String, Integer> low = new HashMap<>();
        Deque<String> stack = new ArrayDeque<>();
        Set<String> onStack = new TreeSet<>();
        List<Set<String>> out = new ArrayList<>();
        int[] counter = {0};
        for (String v : edges.keySet()) {
            if (!index.containsKey(v)) {
                strongConnect(v, edges, index, low, stack, onStack, out, counter);
            }
        }
        return out;
    }

    private static void strongConnect(String v, Map<String, Map<String, Set<String>>> edges, Map<String, Integer> index,
            Map<String, Integer> low, Deque<String> stack, Set<String> onStack, List<Set<String>> out, int[] counter) {
        index.put(v, counter[0]);
        low.put(v, counter[0]);
        counter[0]++;
        stack.push(v);
        onStack.add(v);
        for (String w : edges.getOrDefault(v, Map.of()).keySet()) {
            if (!index.containsKey(w)) {
                strongConnect(w, edges, index, low, stack, onStack, out, counter);
                low.put(v, Math.min(low.get(v), low.get(w)));
            } else if (onStack.contains(w)) {
                low.put(v, Math.min(low.get(v), index.get(w)));
            }
        }
        if (low.get(v).equals(index.get(v))) {
            Set<String> component = new TreeSet<>();
            String w;
            do {
                w = stack.pop();
                onStack.remove(w);
                component.add(w);
            } while (!w.equals(v));
            if (component.size() > 1) {
                out.add(component);
            }
        }
    }

    private static Path repositoryRoot() {
        Path p = Path.of("").toAbsolutePath();
        while (p != null && !Files.exists(p.resolve("mvnw"))) {
            p = p.getParent();
        }
        if (p == null) {
            throw new IllegalStateException("no repository root (a directory with mvnw) above " + Path.of("").toAbsolutePath());
        }
        return p;
    }

    private static String read(Path file) {
        try {
            return Files.readString(file);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
