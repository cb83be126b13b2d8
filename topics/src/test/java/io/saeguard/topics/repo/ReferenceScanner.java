package io.saeguard.topics.repo;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Finds references in a repository's text files that do not resolve inside the repository: a mention of
 * a {@code .md} file, a path that starts with one of the repository's top-level folders, or a Markdown
 * link target, that names no existing file or folder (relative to the citing file, or to the repository
 * root); a {@code file.md#anchor} whose anchor is no heading of that file (GitHub's heading ids); and any
 * mention of {@code ../shared} or a path starting with {@code shared/} (notes kept outside the repository).
 *
 * <p>A path counts as a reference when it ends in {@code .md}, or when its first segment is a top-level
 * folder and its second one exists there ({@code sidecar/src/...}, {@code docs/...}), so that run-time
 * paths which merely share a folder's name ({@code sae/cfg.json} in a temporary directory, an SAE id
 * {@code sae/7}) are not taken for references. Leading {@code ../} segments are resolved against the citing
 * file's folder, its module's folder (where Maven runs its tests) and the root.
 *
 * <p>Not references: URLs ({@code scheme://...}), paths with an elision ({@code sidecar/.../Metrics.java})
 * or a placeholder ({@code $DIR}, {@code <name>}, an upper-case name such as {@code OUT.md} or
 * {@code RAW_DIR/x.md}; {@code README} is a name, not a placeholder), the argument of a command-line
 * option ({@code --report report.md}: a file the command writes), a suffix shorthand ({@code -1423.md}),
 * paths through a build output folder ({@code target/}), and a whole string literal in code
 * ({@code Path.of("report.md")}: a file the code reads or writes, not a document it cites). A glob
 * ({@code detectors/catalog/*.yaml}, {@code provisioning/}{@code *}{@code /*.yaml}) must match at least one file.
 */
final class ReferenceScanner {
    /** One reference that does not resolve. */
    record Problem(Path file, int line, String reference, String why) {
        @Override
        public String toString() {
            return file + ":" + line + ": '" + reference + "' " + why;
        }
    }

    private static final Pattern URL = Pattern.compile("[A-Za-z][A-Za-z0-9+.-]*://[^\\s)\\]>\"'`]*");
    /** A path-like token: letters, digits and {@code _ . / - * #}, plus elision and placeholder characters. */
    private static final Pattern TOKEN = Pattern.compile("[A-Za-z0-9_./*#…$<>~-]+");
    private static final Pattern MD_LINK = Pattern.compile("\\]\\(([^)\\s]+)(?:\\s+\"[^\"]*\")?\\)");
    private static final Pattern SHARED = Pattern.compile("(?<![A-Za-z0-9_.-])(\\.\\./)+shared\\b|(?<![A-Za-z0-9_./-])shared/");
    private static final Pattern LINK_TEXT = Pattern.compile("\\[[^\\]]*\\]\\(");
    private static final Pattern OPTION_BEFORE = Pattern.compile("--[A-Za-z][A-Za-z0-9-]*[ =]$");
    private static final Pattern PLACEHOLDER = Pattern.compile("[A-Z][A-Z0-9_]*");
    private static final Pattern HEADING = Pattern.compile("^(#{1,6})\\s+(.*?)\\s*#*\\s*$");

    private final Path root;
    private final Set<String> topLevel;
    private final Map<Path, Set<String>> anchors = new HashMap<>();

    /**
     * @param root     the repository root
     * @param topLevel names of the repository's top-level folders (e.g. {@code sidecar}, {@code docs})
     */
    ReferenceScanner(Path root, Set<String> topLevel) {
        this.root = root.toAbsolutePath().normalize();
        this.topLevel = Set.copyOf(topLevel);
    }

    /** The problems in one file, given by its path relative to the root. */
    List<Problem> scan(Path relative) throws IOException {
        Path file = root.resolve(relative);
        List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        List<Problem> out = new ArrayList<>();
        boolean markdown = relative.getFileName().toString().endsWith(".md");
        for (int i = 0; i < lines.size(); i++) {
            String line = URL.matcher(lines.get(i)).replaceAll(" ");
            Matcher shared = SHARED.matcher(line);
            while (shared.find()) {
                out.add(new Problem(relative, i + 1, shared.group(), "points outside the repository (shared notes): "
                        + "write what the reader needs into docs/ and cite that"));
            }
            Set<String> seen = new HashSet<>();
            if (markdown) {
                Matcher link = MD_LINK.matcher(line);
                while (link.find()) {
                    String target = link.group(1);
                    if (!target.startsWith("#") && !target.startsWith("mailto:") && seen.add(target)) {
                        check(relative, i + 1, target, true).ifPresent(out::add);
                    }
                }
                line = LINK_TEXT.matcher(line).replaceAll("[](");  // a link's text names its target, which was checked
            }
            Matcher token = TOKEN.matcher(line);
            while (token.find()) {
                String t = trim(token.group());
                if (t.isEmpty() || token.group().startsWith("-") || seen.contains(t) || !looksLikeReference(t)
                        || !markdown && wholeLiteral(line, token.start(), token.end())
                        || OPTION_BEFORE.matcher(line.substring(0, token.start())).find()) {
                    continue;
                }
                seen.add(t);
                check(relative, i + 1, t, false).ifPresent(out::add);
            }
        }
        return out;
    }

    /** Strips sentence punctuation and a Javadoc/Markdown tail from a token. */
    private static String trim(String t) {
        String s = t;
        while (!s.isEmpty() && ".-#".indexOf(s.charAt(s.length() - 1)) >= 0) {
            s = s.substring(0, s.length() - 1);
        }
        while (s.startsWith("-") || s.startsWith("#")) {
            s = s.substring(1);
        }
        return s;
    }

    /** Whether the token is all of a quoted string literal: {@code "x"} or {@code 'x'}. */
    private static boolean wholeLiteral(String line, int start, int end) {
        if (start == 0 || end >= line.length()) {
            return false;
        }
        char open = line.charAt(start - 1);
        return (open == '"' || open == '\'') && line.charAt(end) == open;
    }

    private boolean looksLikeReference(String t) {
        String path = t.contains("#") ? t.substring(0, t.indexOf('#')) : t;
        if (path.isEmpty()) {
            return false;
        }
        if (path.toLowerCase(Locale.ROOT).endsWith(".md")) {
            return true;
        }
        while (path.startsWith("../")) {
            path = path.substring(3);
        }
        String[] segments = path.split("/");
        return segments.length >= 2 && topLevel.contains(segments[0]) && !segments[1].isEmpty()
                && (segments[1].contains("*") || Files.exists(root.resolve(segments[0]).resolve(segments[1])));
    }

    private java.util.Optional<Problem> check(Path citing, int line, String reference, boolean link) {
        if (reference.contains("...") || reference.contains("…") || reference.contains("$") || reference.contains("<")
                || reference.contains("{") || reference.contains("~")) {
            return java.util.Optional.empty();
        }
        String path = reference;
        String anchor = null;
        int hash = reference.indexOf('#');
        if (hash >= 0) {
            path = reference.substring(0, hash);
            anchor = reference.substring(hash + 1);
        }
        if (path.isEmpty() || path.startsWith("/") || path.contains("\\")) {
            return java.util.Optional.empty();
        }
        for (String segment : path.split("/")) {
            String stem = segment.contains(".") ? segment.substring(0, segment.indexOf('.')) : segment;
            if (segment.equals("target") // a build output: generated, never tracked
                    || stem.isEmpty() && !segment.equals("..") && !segment.equals(".")
                    || PLACEHOLDER.matcher(stem).matches() && !stem.equals("README")) {
                return java.util.Optional.empty();
            }
        }
        Path dir = citing.getParent() == null ? Path.of("") : citing.getParent();
        List<Path> candidates = link ? List.of(dir.resolve(path))
                : List.of(dir.resolve(path), citing.getNameCount() > 1 ? citing.getName(0).resolve(path) : Path.of(path), Path.of(path));
        for (Path candidate : candidates) {
            Path resolved = root.resolve(candidate).normalize();
            if (!resolved.startsWith(root)) {
                continue;
            }
            if (path.contains("*") ? globMatches(resolved) : Files.exists(resolved)) {
                if (anchor != null && !anchor.isEmpty() && Files.isRegularFile(resolved) && resolved.toString().endsWith(".md")
                        && !anchorsOf(resolved).contains(anchor)) {
                    return java.util.Optional.of(new Problem(citing, line, reference, "names no heading of "
                            + root.relativize(resolved) + " (headings: " + anchorsOf(resolved) + ")"));
                }
                return java.util.Optional.empty();
            }
        }
        return java.util.Optional.of(new Problem(citing, line, reference, "resolves to no file in the repository (tried "
                + String.join(" and ", candidates.stream().map(c -> c.normalize().toString()).toList()) + ")"));
    }

    /** Whether a path with {@code *} segments matches a file under the folder before the first of them. */
    private static boolean globMatches(Path pattern) {
        Path base = pattern.getRoot();
        for (Path part : pattern) {
            if (part.toString().contains("*")) {
                break;
            }
            base = base.resolve(part);
        }
        if (!Files.isDirectory(base)) {
            return false;
        }
        PathMatcher matcher = FileSystems.getDefault().getPathMatcher("glob:" + pattern);
        try (var files = Files.walk(base)) {
            return files.anyMatch(matcher::matches);
        } catch (IOException e) {
            return false;
        }
    }

    /** GitHub's ids for the headings of a Markdown file (outside code fences). */
    Set<String> anchorsOf(Path markdown) {
        return anchors.computeIfAbsent(markdown, f -> {
            Set<String> ids = new java.util.LinkedHashSet<>();
            Map<String, Integer> counts = new HashMap<>();
            boolean fenced = false;
            List<String> lines;
            try {
                lines = Files.readAllLines(f, StandardCharsets.UTF_8);
            } catch (IOException e) {
                return ids;
            }
            for (String line : lines) {
                if (line.stripLeading().startsWith("```")) {
                    fenced = !fenced;
                    continue;
                }
                Matcher m = HEADING.matcher(line);
                if (fenced || !m.matches()) {
                    continue;
                }
                String id = slug(m.group(2));
                int n = counts.merge(id, 1, Integer::sum);
                ids.add(n == 1 ? id : id + "-" + (n - 1));
            }
            return ids;
        });
    }

    /** GitHub's heading id: lower case, punctuation dropped (but {@code -} and {@code _}), spaces to {@code -}. */
    static String slug(String heading) {
        String text = heading.replaceAll("\\[([^\\]]*)\\]\\([^)]*\\)", "$1"); // a link's text only
        StringBuilder b = new StringBuilder();
        text.toLowerCase(Locale.ROOT).codePoints().forEach(c -> {
            if (Character.isLetterOrDigit(c) || c == '-' || c == '_') {
                b.appendCodePoint(c);
            } else if (c == ' ') {
                b.append('-');
            }
        });
        return b.toString();
    }
}
