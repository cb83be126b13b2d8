package io.saeguard.sidecar.pipeline;

import io.saeguard.sidecar.config.SidecarConfig;
import io.saeguard.topics.activation.ActivationChunk;
import java.util.List;
import java.util.Optional;

/**
 * Picks the SAE for a record: the record's explicit {@code sae} id, else the configured SAE whose
 * model and hook match the record's (an SAE entry without a model matches any model).
 */
public final class SaeRouter {
    private final List<SidecarConfig.SaeEntry> saes;

    public SaeRouter(List<SidecarConfig.SaeEntry> saes) {
        this.saes = List.copyOf(saes);
    }

    /** The SAE id for a record, or empty with no match. */
    public Optional<String> route(ActivationChunk chunk) {
        return route(chunk.sae(), chunk.model(), chunk.hook());
    }

    /** The SAE id for an explicit id, or for a model and hook; empty with no match. */
    public Optional<String> route(Optional<String> sae, Optional<String> model, Optional<String> hook) {
        if (sae.isPresent()) {
            String id = sae.get();
            return saes.stream().map(SidecarConfig.SaeEntry::id).filter(id::equals).findFirst();
        }
        for (SidecarConfig.SaeEntry e : saes) {
            boolean hookMatches = e.hook().isEmpty() || e.hook().equals(hook);
            boolean modelMatches = e.model().isEmpty() || e.model().equals(model);
            if (hookMatches && modelMatches && (e.hook().isPresent() || e.model().isPresent() || saes.size() == 1)) {
                return Optional.of(e.id());
            }
        }
        return Optional.empty();
    }

    /** Why a record did not route, for the dead-letter message. */
    String explain(ActivationChunk chunk) {
        if (chunk.sae().isPresent()) {
            return "unknown SAE id '" + chunk.sae().get() + "' (configured: " + ids() + ")";
        }
        return "no configured SAE serves model '" + chunk.model().orElse("-") + "' at hook '" + chunk.hook().orElse("-")
                + "' (configured: " + ids() + "); set the record's 'sae' metadata or add an SAE with this model and hook";
    }

    /** The configured SAEs, for error messages. */
    public String ids() {
        return saes.isEmpty() ? "none" : String.join(", ", saes.stream().map(e -> e.id() + e.model().map(m -> "@" + m).orElse("")
                + e.hook().map(h -> ":" + h).orElse("")).toList());
    }
}
