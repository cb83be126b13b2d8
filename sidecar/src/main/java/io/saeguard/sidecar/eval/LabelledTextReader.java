package io.saeguard.sidecar.eval;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * Reads a JSONL file of labelled texts one line at a time (a file of any size in bounded memory). Each non-blank line
 * is an object with {@code "text"} (a non-empty string) and {@code "label"} ({@code true} or {@code false}), and an
 * optional {@code "group"} (a string); other fields are ignored. Blank lines are skipped. A line that breaks these
 * rules is a {@link LabelledDataException} naming the file and the line.
 *
 * <p>Not thread-safe: one reader per thread.
 */
public final class LabelledTextReader implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path file;
    private final BufferedReader in;
    private long line;
    private int nextIndex;

    private LabelledTextReader(Path file, BufferedReader in, int firstIndex) {
        this.file = file;
        this.in = in;
        this.nextIndex = firstIndex;
    }

    /**
     * Opens {@code file}; its texts get indexes from {@code firstIndex} on.
     *
     * @throws LabelledDataException when the file cannot be opened
     */
    public static LabelledTextReader open(Path file, int firstIndex) {
        try {
            return new LabelledTextReader(file, Files.newBufferedReader(file, StandardCharsets.UTF_8), firstIndex);
        } catch (IOException e) {
            throw new LabelledDataException(file + ": cannot read the labelled texts (" + e + "); give a JSONL file with one "
                    + "{\"text\": ..., \"label\": true|false} per line", e);
        }
    }

    /** Reads {@code in} as if it were {@code file} (its name in messages). */
    static LabelledTextReader of(Path file, java.io.Reader in, int firstIndex) {
        return new LabelledTextReader(file, new BufferedReader(in), firstIndex);
    }

    /** The next text, or empty at the end of the file. */
    public Optional<LabelledText> next() {
        while (true) {
            String raw;
            try {
                raw = in.readLine();
            } catch (IOException e) {
                throw new LabelledDataException(file + ":" + (line + 1) + ": cannot read the line (" + e + ")", e);
            }
            if (raw == null) {
                return Optional.empty();
            }
            line++;
            if (!raw.isBlank()) {
                return Optional.of(parse(raw));
            }
        }
    }

    private LabelledText parse(String raw) {
        JsonNode node;
        try {
            node = JSON.readTree(raw);
        } catch (JsonProcessingException e) {
            throw bad("not JSON (" + e.getOriginalMessage() + ")");
        }
        if (node == null || !node.isObject()) {
            throw bad("not a JSON object");
        }
        JsonNode text = node.get("text");
        if (text == null || !text.isTextual() || text.textValue().isEmpty()) {
            throw bad("'text' must be a non-empty string" + (text == null ? " and is missing" : ", found " + abbreviate(text)));
        }
        JsonNode label = node.get("label");
        if (label == null || !label.isBoolean()) {
            throw bad("'label' must be true (a positive: what the detectors should catch) or false, "
                    + (label == null ? "and is missing" : "found " + abbreviate(label)));
        }
        JsonNode group = node.get("group");
        if (group != null && !group.isNull() && !group.isTextual()) {
            throw bad("'group' must be a string when given, found " + abbreviate(group));
        }
        Optional<String> g = group == null || group.isNull() ? Optional.empty() : Optional.of(group.textValue());
        return new LabelledText(file, line, nextIndex++, text.textValue(), label.booleanValue(), g);
    }

    private LabelledDataException bad(String problem) {
        return new LabelledDataException(file + ":" + line + ": " + problem + "; each line must be {\"text\": \"...\", \"label\": true|false} "
                + "with an optional \"group\": \"...\"");
    }

    /** A value as the message shows it: its JSON, cut short (never more than a few words of a text). */
    private static String abbreviate(JsonNode value) {
        String s = value.toString();
        return s.length() > 40 ? s.substring(0, 37) + "..." : s;
    }

    /** The number of the line read last, from 1. */
    public long line() {
        return line;
    }

    @Override
    public void close() {
        try {
            in.close();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
