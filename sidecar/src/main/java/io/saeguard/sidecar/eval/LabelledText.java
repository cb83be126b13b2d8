package io.saeguard.sidecar.eval;

import java.nio.file.Path;
import java.util.Objects;
import java.util.Optional;

/**
 * One labelled text of a JSONL file: {@code {"text": "...", "label": true|false, "group": "..."?}}.
 *
 * @param file  the file it came from
 * @param line  its line number in that file, from 1
 * @param index its position among all the texts of an evaluation, from 0
 * @param text  the text, non-empty
 * @param label whether it is a positive (what the detectors should catch)
 * @param group an optional group for a per-group breakdown (e.g. a ToxiGen target group)
 */
public record LabelledText(Path file, long line, int index, String text, boolean label, Optional<String> group) {
    public LabelledText {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(text, "text");
        Objects.requireNonNull(group, "group");
    }
}
