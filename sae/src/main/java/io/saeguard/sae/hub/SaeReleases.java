package io.saeguard.sae.hub;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.stream.Collectors;

/**
 * SAELens's table of pretrained SAEs ({@code sae_lens/pretrained_saes.yaml}), the names every SAELens user gives
 * an SAE: {@code (release, sae_id)}. saeguard ships a copy as data
 * ({@code io/saeguard/sae/hub/saelens-pretrained-saes.json}, written by {@code sae/tools/saelens_table.py}; MIT
 * licence in {@code SAELENS-LICENSE} beside it); {@link #source()} says which SAELens version it came from.
 * Immutable and thread-safe.
 */
public final class SaeReleases {
    static final String RESOURCE = "saelens-pretrained-saes.json";
    private static final int SUGGESTIONS = 8;

    private final Map<String, Release> releases;
    private final String source;

    private record Release(String repoId, String model, Conversion conversion, Optional<String> normalizeActivations,
            Map<String, JsonNode> saes) {
    }

    private SaeReleases(Map<String, Release> releases, String source) {
        this.releases = releases;
        this.source = source;
    }

    /** The table shipped in the jar. */
    public static SaeReleases bundled() {
        return Bundled.TABLE;
    }

    private static final class Bundled {
        static final SaeReleases TABLE = read();

        private static SaeReleases read() {
            try (InputStream in = SaeReleases.class.getResourceAsStream(RESOURCE)) {
                if (in == null) {
                    throw new IllegalStateException("the jar lacks io/saeguard/sae/hub/" + RESOURCE);
                }
                return parse(new ObjectMapper().readTree(in));
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read io/saeguard/sae/hub/" + RESOURCE, e);
            }
        }
    }

    static SaeReleases parse(JsonNode root) {
        JsonNode src = root.path("source");
        String source = src.path("project").asText() + " " + src.path("version").asText() + " (" + src.path("file").asText()
                + " at commit " + src.path("commit").asText() + ", " + src.path("licence").asText() + " licence)";
        Map<String, Release> releases = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.path("releases").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            JsonNode r = e.getValue();
            String conversion = r.path("conversion").asText();
            Conversion c = Conversion.of(conversion).orElseThrow(() -> new IllegalStateException("release table: release '"
                    + e.getKey() + "' has conversion '" + conversion + "', which saeguard does not know"));
            Map<String, JsonNode> saes = new LinkedHashMap<>();
            for (JsonNode s : r.path("saes")) {
                saes.putIfAbsent(s.get(0).asText(), s);
            }
            Optional<String> norm = r.hasNonNull("normalize_activations") ? Optional.of(r.get("normalize_activations").asText())
                    : Optional.empty();
            releases.put(e.getKey(), new Release(r.path("repo_id").asText(), r.path("model").asText(), c, norm,
                    Collections.unmodifiableMap(saes)));
        }
        return new SaeReleases(Collections.unmodifiableMap(releases), source);
    }

    /** Where the table came from: SAELens's version, file and commit, and its licence. */
    public String source() {
        return source;
    }

    /** Every release name, in the table's order. */
    public List<String> releases() {
        return List.copyOf(releases.keySet());
    }

    /** The SAE ids of {@code release}, in the table's order; empty for an unknown release. */
    public List<String> saeIds(String release) {
        Release r = releases.get(release);
        return r == null ? List.of() : List.copyOf(r.saes().keySet());
    }

    /**
     * The SAE named {@code (release, saeId)}. An unknown release or id is an error naming a few close names; a
     * release saeguard cannot load is not (see {@link Conversion#supported()}; {@link SaePuller} refuses it).
     */
    public PretrainedSae find(String release, String saeId) throws SaeSourceException {
        Release r = releases.get(release);
        if (r == null) {
            throw new SaeSourceException("unknown SAE release '" + release + "' (the table of " + source + " has " + releases.size()
                    + " releases" + suggest(release, releases.keySet()) + ")");
        }
        JsonNode s = r.saes().get(saeId);
        if (s == null) {
            throw new SaeSourceException("release '" + release + "' has no SAE with id '" + saeId + "' (it has " + r.saes().size()
                    + suggest(saeId, r.saes().keySet()) + ")");
        }
        OptionalDouble nsf = s.size() > 2 && s.get(2).isNumber() ? OptionalDouble.of(s.get(2).asDouble()) : OptionalDouble.empty();
        return new PretrainedSae(release, saeId, r.repoId(), r.model(), r.conversion(), s.get(1).asText(), nsf, r.normalizeActivations());
    }

    /** ", e.g. a, b, c": the names sharing the longest prefix with {@code wanted}, else the first few. */
    private static String suggest(String wanted, Iterable<String> names) {
        List<String> all = new ArrayList<>();
        names.forEach(all::add);
        String w = wanted.toLowerCase(Locale.ROOT);
        int best = 0;
        for (String n : all) {
            best = Math.max(best, commonPrefix(w, n.toLowerCase(Locale.ROOT)));
        }
        int threshold = best;
        List<String> close = all.stream().filter(n -> commonPrefix(w, n.toLowerCase(Locale.ROOT)) == threshold).limit(SUGGESTIONS)
                .collect(Collectors.toList());
        return close.isEmpty() ? "" : ", e.g. " + String.join(", ", close);
    }

    private static int commonPrefix(String a, String b) {
        int n = Math.min(a.length(), b.length());
        int i = 0;
        while (i < n && a.charAt(i) == b.charAt(i)) {
            i++;
        }
        return i;
    }
}
