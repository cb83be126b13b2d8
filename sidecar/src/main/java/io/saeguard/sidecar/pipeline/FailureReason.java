package io.saeguard.sidecar.pipeline;

import io.saeguard.topics.DecodeException;
import java.util.Locale;
import java.util.Objects;

/**
 * Why a record was dead-lettered: the closed set of {@code saeguard.error.reason} header values and {@code reason} label
 * values of {@code saeguard_deadletters_total}, each belonging to one {@link FailureStage}. A label may recur under
 * different stages ({@code non_finite}: a record's own values, or the prompt model's output); the pair is what is unique.
 */
public enum FailureReason {
    /** A record without a value (a tombstone). */
    NULL_VALUE(FailureStage.DECODE),
    /** See {@link DecodeException.Reason#TRUNCATED_HEADER}. */
    TRUNCATED_HEADER(FailureStage.DECODE),
    /** See {@link DecodeException.Reason#HEADER_LENGTH_PAST_END}. */
    HEADER_LENGTH_PAST_END(FailureStage.DECODE),
    /** See {@link DecodeException.Reason#MALFORMED_HEADER}. */
    MALFORMED_HEADER(FailureStage.DECODE),
    /** See {@link DecodeException.Reason#UNKNOWN_DTYPE}. */
    UNKNOWN_DTYPE(FailureStage.DECODE),
    /** See {@link DecodeException.Reason#SIZE_MISMATCH}. */
    SIZE_MISMATCH(FailureStage.DECODE),
    /** See {@link DecodeException.Reason#MISSING_TENSOR}. */
    MISSING_TENSOR(FailureStage.DECODE),
    /** See {@link DecodeException.Reason#MISSING_FIELD}. */
    MISSING_FIELD(FailureStage.DECODE),
    /** See {@link DecodeException.Reason#INVALID_VALUE}. */
    INVALID_VALUE(FailureStage.DECODE),
    /** No configured SAE serves the record's sae / model / hook. */
    UNKNOWN_SAE(FailureStage.ROUTE),
    /** The record's key differs from the request id inside it. */
    KEY_MISMATCH(FailureStage.VALIDATE),
    /** The activations' width differs from the SAE's d_in. */
    WRONG_D_IN(FailureStage.VALIDATE),
    /** More tokens than {@code batching.max_record_tokens}. */
    OVERSIZE(FailureStage.VALIDATE),
    /** A NaN or infinite activation. */
    NON_FINITE(FailureStage.VALIDATE),
    /** A prompt event without text. */
    EMPTY_TEXT(FailureStage.VALIDATE),
    /** A {@code reply_partition} that is not a partition of the decisions topic. */
    REPLY_PARTITION_OUT_OF_RANGE(FailureStage.VALIDATE),
    /** The prompt model threw. */
    MODEL_ERROR(FailureStage.MODEL),
    /** The prompt model produced a NaN or infinite hidden state. */
    MODEL_NON_FINITE(FailureStage.MODEL, "non_finite"),
    /** The SAE engine failed on a batch. */
    ENGINE_ERROR(FailureStage.ENCODE),
    /** The detectors' input could not be built for the record. */
    DETECTOR_ERROR(FailureStage.DETECT),
    /** The outputs could not be built or handed to the producer. */
    PUBLISH_ERROR(FailureStage.EGRESS),
    /** A record on the judge-verdicts topic that is not a valid verdict (judge-verdict.schema.json), or keyed otherwise. */
    MALFORMED_VERDICT(FailureStage.JUDGE),
    /** A verdict for a request with no escalation pending on this replica. */
    UNKNOWN_REQUEST(FailureStage.JUDGE),
    /** A verdict for a request whose escalation was settled already (by an earlier verdict or by its fallback). */
    LATE_VERDICT(FailureStage.JUDGE);

    private final FailureStage stage;
    private final String label;

    FailureReason(FailureStage stage) {
        this(stage, null);
    }

    FailureReason(FailureStage stage, String label) {
        this.stage = stage;
        this.label = label != null ? label : name().toLowerCase(Locale.ROOT);
    }

    /** The stage this reason belongs to. */
    public FailureStage stage() {
        return stage;
    }

    /** The wire and label form, e.g. {@code wrong_d_in}. */
    public String label() {
        return label;
    }

    /** The decode reason of a record the codecs refused. */
    public static FailureReason of(DecodeException e) {
        Objects.requireNonNull(e, "e");
        return valueOf(e.reason().name());
    }
}
