package io.saeguard.sidecar.pipeline;

import java.util.Locale;

/**
 * Where in the pipeline a record failed: the closed set of {@code saeguard.error.stage} header values and
 * {@code stage} label values of {@code saeguard_deadletters_total}, in pipeline order (as Kafka Connect's
 * {@code Stage} names its {@code __connect.errors.stage} values).
 */
public enum FailureStage {
    /** The bytes are not a valid activation record or prompt event. */
    DECODE,
    /** No configured SAE serves the record. */
    ROUTE,
    /** Well-formed, but its content is not acceptable (key, width, size, values, text). */
    VALIDATE,
    /** The prompt model failed on the text, or produced non-finite hidden states. */
    MODEL,
    /** The SAE encode failed (an engine failure, not the record's). */
    ENCODE,
    /** The record's evidence could not be put to the detectors. */
    DETECT,
    /** The record's decision and alerts could not be built or handed to the producer. */
    EGRESS,
    /** A judge's verdict could not be applied (docs/architecture.md#judge-cascade). */
    JUDGE;

    /** The wire and label form: the name in lower case. */
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }
}
