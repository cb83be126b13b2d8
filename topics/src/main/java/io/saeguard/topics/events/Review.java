package io.saeguard.topics.events;

import java.util.Objects;
import java.util.Optional;

/**
 * A reviewer's verdict on one alert, the value of a record on the compacted {@code saeguard.reviews} topic (schema
 * {@code topics/schemas/review.schema.json}). An alert is named by {@link #alertId()}, {@code <request_id>/<seq>}, and
 * its detector: several detectors can alert on the same chunk, and so share a seq. The record key is {@link #key()},
 * {@code <request_id>/<seq>/<detector>}, so a later verdict on the same detector's alert replaces an earlier one. {@link #toString()} shows the note's length, never its text.
 *
 * @param requestId the alert's request id (non-empty)
 * @param seq       the alert's decision sequence number ({@code >= 0})
 * @param verdict   the verdict
 * @param detector  the detector that raised the alert, taken from the alert
 * @param reviewer  who gave the verdict: the HTTP token's name
 * @param note      the reviewer's note, plain text, at most {@value #MAX_NOTE_CHARS} characters
 * @param time      when the verdict was given, epoch milliseconds
 */
public record Review(String requestId, long seq, Verdict verdict, String detector, String reviewer, Optional<String> note, long time) {
    /** Longest note, in characters (UTF-16 code units, as Java and JavaScript count them). */
    public static final int MAX_NOTE_CHARS = 2000;

    public Review {
        EventInvariants.nonEmpty(requestId, "request_id");
        EventInvariants.nonNegative(seq, "seq");
        Objects.requireNonNull(verdict, "verdict");
        EventInvariants.nonEmpty(detector, "detector");
        EventInvariants.nonEmpty(reviewer, "reviewer");
        Objects.requireNonNull(note, "note");
        if (note.isPresent() && note.get().length() > MAX_NOTE_CHARS) {
            throw new IllegalArgumentException("note has " + note.get().length() + " characters; at most " + MAX_NOTE_CHARS + " are kept");
        }
        EventInvariants.nonNegative(time, "time");
    }

    /** The alert's id, {@code <request_id>/<seq>}: the record key of the reviews topic. */
    public String alertId() {
        return alertId(requestId, seq);
    }

    /** The id of the alert {@code seq} of request {@code requestId}: {@code <request_id>/<seq>}. */
    public static String alertId(String requestId, long seq) {
        return requestId + "/" + seq;
    }

    /** The record key on the reviews topic: {@code <request_id>/<seq>/<detector>}. */
    public String key() {
        return key(requestId, seq, detector);
    }

    /** The reviews topic's key of detector {@code detector}'s alert {@code seq} of request {@code requestId}. */
    public static String key(String requestId, long seq, String detector) {
        return alertId(requestId, seq) + "/" + detector;
    }

    @Override
    public String toString() {
        return "Review[alertId=" + alertId() + ", verdict=" + verdict.wireName() + ", detector=" + detector + ", reviewer=" + reviewer
                + ", note=" + note.map(EventInvariants::redacted) + ", time=" + time + "]";
    }
}
