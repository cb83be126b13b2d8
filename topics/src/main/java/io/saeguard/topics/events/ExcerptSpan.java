package io.saeguard.topics.events;

/**
 * Where one firing token sits inside an alert's excerpt, so a reviewer's page can mark it: characters
 * {@code [start, end)} of the excerpt string, counted as Java and JavaScript index strings (UTF-16 code units). Wire
 * form {@code {"start", "end"}}.
 *
 * @param start first character of the token in the excerpt, {@code >= 0}
 * @param end   one past its last character, {@code > start}
 */
public record ExcerptSpan(int start, int end) {
    public ExcerptSpan {
        if (start < 0 || end <= start) {
            throw new IllegalArgumentException("an excerpt span needs 0 <= start < end, found [" + start + ", " + end + ")");
        }
    }
}
