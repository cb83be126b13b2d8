package io.saeguard.sae.hub;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Turns an SAE of SAELens's table into a local directory that {@link io.saeguard.sae.format.SaeLoader} loads:
 * from the cache when it is there, else from the Hugging Face Hub.
 *
 * <p>Cache layout (the hub's folder names, without its blob store and symlinks):
 * {@code <cacheRoot>/hub/models--<org>--<name>/refs/<revision>} holds the commit a revision was resolved to, and
 * {@code .../snapshots/<commit>/<path in the repository>} the files, exactly as in the repository. An SAE's
 * directory is complete when it holds {@value #MANIFEST} (written last: the release, the commit and every file
 * with its size and hash); files are renamed into place only after their size and hash matched the hub's, and a
 * {@code .part} left by an interrupted download is resumed. A cached SAE is not checked against the hub again:
 * a branch moves on only with {@code refresh} (or a new {@code --revision}).
 *
 * <p>Settings SAELens keeps in its table rather than the files (a {@code norm_scaling_factor}, a release's
 * {@code normalize_activations} override) are written into the pulled {@code cfg.json}; the hub's own copy is kept
 * beside it as {@value #HUB_CFG}, and the manifest names what was added.
 *
 * <p>One call at a time per instance; two processes pulling the same file do not corrupt it (the {@code .part} is
 * locked while written) but the second fails and can be run again.
 */
public final class SaePuller {
    /** The file that marks a pulled SAE directory complete. */
    public static final String MANIFEST = ".saeguard-pull.json";
    static final String HUB_CFG = "cfg.hub.json";
    private static final Logger LOGGER = LoggerFactory.getLogger(SaePuller.class);
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    /** What a pull reports as it goes; {@link #NONE} ignores it. Called on the pulling thread. */
    public interface Listener {
        /** Before a file is fetched: its URL, its size and the bytes a {@code .part} already holds. */
        default void downloading(String path, URI url, long size, long resumeFrom) {
        }

        /** Now and then during a file's download, and once at its end. */
        default void progress(String path, long done, long total) {
        }
    }

    public static final Listener NONE = new Listener() {
    };

    private final HubSettings settings;
    private final HubClient client;
    private final Listener listener;

    public SaePuller(HubSettings settings, Listener listener) {
        this.settings = settings;
        this.client = new HubClient(settings);
        this.listener = listener;
    }

    /** The settings it was built with. */
    public HubSettings settings() {
        return settings;
    }

    /** A pulled SAE: its directory and whether this call downloaded anything. */
    public record Pulled(Path directory, String commit, boolean downloaded) {
    }

    /**
     * The local directory of {@code sae} at {@code revision} (a branch, tag or commit; {@code main} by default in
     * SAELens): the cached one, else downloaded. {@code refresh} asks the hub what commit the revision names now
     * even when the cache has it. Offline ({@code HF_HUB_OFFLINE}) only the cache is read, and a miss is an error
     * naming the URL that would have been needed.
     */
    public Pulled pull(PretrainedSae sae, String revision, boolean refresh) throws SaeSourceException {
        if (!sae.conversion().supported()) {
            throw new SaeSourceException("release '" + sae.release() + "' is in SAELens's '" + sae.conversion().wireName()
                    + "' format (" + sae.conversion().files() + "), which saeguard cannot load; releases saeguard loads use "
                    + Conversion.supportedList());
        }
        if (sae.conversion() == Conversion.GEMMA_2 && sae.path().contains("embedding")) {
            throw new SaeSourceException("'" + sae.name() + "' is a Gemma Scope embedding SAE: SAELens rescales its weights by "
                    + "sqrt(d_in) at load, which saeguard's Gemma Scope loader does not do; use a layer SAE of the release");
        }
        Path repoDir = settings.hubCache().resolve("models--" + sae.repoId().replace("/", "--"));
        Path ref = repoDir.resolve("refs").resolve(revision);
        if (!refresh || settings.offline()) {
            Optional<String> known = readRef(ref, revision);
            if (known.isPresent()) {
                Path dir = saeDir(repoDir, known.get(), sae);
                if (complete(dir)) {
                    return new Pulled(dir, known.get(), false);
                }
            }
        }
        String commit = client.commit(sae.repoId(), revision);
        Path dir = saeDir(repoDir, commit, sae);
        boolean fetch = !complete(dir);
        if (fetch) {
            download(sae, revision, commit, dir);
        }
        writeRef(ref, commit);
        return new Pulled(dir, commit, fetch);
    }

    private void download(PretrainedSae sae, String revision, String commit, Path dir) throws SaeSourceException {
        List<HubFile> listing = client.tree(sae.repoId(), commit, sae.path());
        Map<String, HubFile> byRelative = listing.stream().filter(f -> f.path().startsWith(sae.path() + "/"))
                .collect(Collectors.toMap(f -> f.path().substring(sae.path().length() + 1), Function.identity(), (a, b) -> a));
        List<String> missing = sae.conversion().requiredFiles().stream().filter(f -> !byRelative.containsKey(f)).toList();
        if (!missing.isEmpty()) {
            throw new SaeSourceException(sae.repoId() + " at " + commit + " has no " + String.join(", ", missing) + " under '" + sae.path()
                    + "' (it has: " + String.join(", ", byRelative.keySet().stream().sorted().limit(20).toList()) + "), which the '"
                    + sae.conversion().wireName() + "' format needs; the release table may be out of date for this SAE");
        }
        List<String> wanted = new ArrayList<>(sae.conversion().requiredFiles());
        sae.conversion().optionalFiles().stream().filter(byRelative::containsKey).forEach(wanted::add);
        LOGGER.atInfo().addKeyValue("sae", sae.name()).addKeyValue("repo", sae.repoId()).addKeyValue("revision", revision)
                .addKeyValue("commit", commit).addKeyValue("directory", dir).log("SAE not in the cache: downloading it from the hub");
        ArrayNode files = JSON.createArrayNode();
        for (String relative : wanted) {
            HubFile f = byRelative.get(relative);
            Path target = dir.resolve(relative);
            if (!(Files.isRegularFile(target) && size(target) == f.size())) {
                Path part = target.resolveSibling(target.getFileName() + ".part");
                listener.downloading(relative, client.fileUrl(sae.repoId(), commit, f.path()), f.size(), Files.isRegularFile(part) ? size(part) : 0);
                long t0 = System.nanoTime();
                client.download(sae.repoId(), commit, f, target, (p, done, total) -> listener.progress(relative, done, total));
                LOGGER.atInfo().addKeyValue("file", f.path()).addKeyValue("bytes", f.size())
                        .addKeyValue("seconds", String.format("%.1f", (System.nanoTime() - t0) / 1e9)).log("downloaded and checked");
            }
            ObjectNode entry = files.addObject().put("path", relative).put("size", f.size());
            f.lfsSha256().ifPresentOrElse(s -> entry.put("sha256", s), () -> entry.put("git_blob_id", f.blobId()));
        }
        ObjectNode manifest = JSON.createObjectNode().put("release", sae.release()).put("sae_id", sae.saeId()).put("repo_id", sae.repoId())
                .put("path", sae.path()).put("revision", revision).put("commit", commit).put("conversion", sae.conversion().wireName())
                .put("table", SaeReleases.bundled().source());
        manifest.set("files", files);
        amendConfig(sae, dir, manifest);
        try {
            Path tmp = dir.resolve(MANIFEST + ".tmp");
            JSON.writeValue(tmp.toFile(), manifest);
            Files.move(tmp, dir.resolve(MANIFEST), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new SaeSourceException("cannot write " + dir.resolve(MANIFEST) + ": " + e.getMessage(), e);
        }
    }

    /** SAELens applies these from its table at load; saeguard's loader reads them from cfg.json. */
    private static void amendConfig(PretrainedSae sae, Path dir, ObjectNode manifest) throws SaeSourceException {
        if (sae.conversion() != Conversion.SAE_LENS || (sae.normScalingFactor().isEmpty() && sae.normalizeActivations().isEmpty())) {
            return;
        }
        Path cfg = dir.resolve("cfg.json");
        Path hub = dir.resolve(HUB_CFG);
        try {
            if (!Files.isRegularFile(hub)) {
                Files.copy(cfg, hub);
            }
            JsonNode tree = JSON.readTree(hub.toFile());
            if (!(tree instanceof ObjectNode o)) {
                throw new SaeSourceException(hub + ": expected a JSON object");
            }
            ObjectNode added = manifest.putObject("added_to_cfg_json");
            sae.normScalingFactor().ifPresent(f -> {
                o.put("norm_scaling_factor", f);
                added.put("norm_scaling_factor", f);
            });
            sae.normalizeActivations().ifPresent(n -> {
                o.put("normalize_activations", n);
                added.put("normalize_activations", n);
            });
            Path tmp = dir.resolve("cfg.json.tmp");
            JSON.writeValue(tmp.toFile(), o);
            Files.move(tmp, cfg, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new SaeSourceException("cannot amend " + cfg + ": " + e.getMessage(), e);
        }
    }

    private static Path saeDir(Path repoDir, String commit, PretrainedSae sae) {
        return repoDir.resolve("snapshots").resolve(commit).resolve(sae.path());
    }

    /** The manifest is there and every file it lists has its size. */
    static boolean complete(Path dir) {
        Path manifest = dir.resolve(MANIFEST);
        if (!Files.isRegularFile(manifest)) {
            return false;
        }
        try {
            for (JsonNode f : JSON.readTree(manifest.toFile()).path("files")) {
                Path p = dir.resolve(f.path("path").asText());
                if (!Files.isRegularFile(p) || Files.size(p) != f.path("size").asLong()) {
                    return false;
                }
            }
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    private static Optional<String> readRef(Path ref, String revision) {
        if (revision.matches("[0-9a-f]{40}")) {
            return Optional.of(revision);
        }
        try {
            String commit = Files.readString(ref, StandardCharsets.UTF_8).strip();
            return commit.matches("[0-9a-f]{40}") ? Optional.of(commit) : Optional.empty();
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    private static void writeRef(Path ref, String commit) throws SaeSourceException {
        try {
            Files.createDirectories(ref.getParent());
            Path tmp = ref.resolveSibling(ref.getFileName() + ".tmp");
            Files.writeString(tmp, commit, StandardCharsets.UTF_8);
            Files.move(tmp, ref, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new SaeSourceException("cannot write " + ref + ": " + e.getMessage(), e);
        }
    }

    private static long size(Path p) throws SaeSourceException {
        try {
            return Files.size(p);
        } catch (IOException e) {
            throw new SaeSourceException("cannot read " + p + ": " + e.getMessage(), e);
        }
    }
}
