package io.saeguard.sidecar.pipeline;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.saeguard.detectors.Verdict;
import java.util.List;

/**
 * Every detector's verdict on a chunk as JSON, the same in {@code POST /v1/check}'s answer and in
 * {@code saeguard eval}'s scores file, so a reviewer sees why a text was allowed, not only the winning decision:
 * {@code [{"detector", "score", "action", "alert", "shadow"?, "failure"?}, ...]} in the detectors' evaluation order;
 * {@code "shadow": true} marks a shadow detector's verdict (what it would have done; it decided nothing). The score is
 * {@code null} where the detector failed with an error (its score is NaN); {@code failure} ({@code {"kind",
 * "message"}}, kind {@code error} or {@code deadline}) is there only when the detector failed.
 */
public final class VerdictsJson {
    private VerdictsJson() {
    }

    /** The verdicts as a JSON array. */
    public static ArrayNode of(List<Verdict> verdicts) {
        ArrayNode out = JsonNodeFactory.instance.arrayNode(verdicts.size());
        for (Verdict v : verdicts) {
            ObjectNode o = out.addObject().put("detector", v.detector());
            if (Double.isFinite(v.score())) {
                o.put("score", v.score());
            } else {
                o.putNull("score");
            }
            o.put("action", v.action().wireName()).put("alert", v.alert());
            if (v.shadow()) {
                o.put("shadow", true);
            }
            v.failure().ifPresent(f -> o.putObject("failure").put("kind", f.kind()).put("message", f.message()));
        }
        return out;
    }
}
