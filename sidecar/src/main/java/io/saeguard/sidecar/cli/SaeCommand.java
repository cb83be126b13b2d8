package io.saeguard.sidecar.cli;

import io.saeguard.sae.hub.HubSettings;
import io.saeguard.sae.hub.PretrainedSae;
import io.saeguard.sae.hub.SaePuller;
import io.saeguard.sae.hub.SaeReleases;
import java.io.PrintStream;
import java.net.URI;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code saeguard sae ...}: SAEs by name. */
@Command(name = "sae", mixinStandardHelpOptions = true, description = "SAEs named by SAELens release and id.",
        subcommands = SaeCommand.Pull.class)
final class SaeCommand {

    /** {@code saeguard sae pull RELEASE SAE_ID}. */
    @Command(name = "pull", mixinStandardHelpOptions = true,
            description = {"Fetches an SAE named as SAELens names it (RELEASE SAE_ID, from SAELens's pretrained_saes.yaml) from the "
                    + "Hugging Face Hub into the local cache, and prints its directory as the last line of stdout.",
                    "Reads HF_ENDPOINT, HF_TOKEN (or the huggingface_hub token file) and HF_HUB_OFFLINE as huggingface_hub does. "
                            + "Cache: --cache, else $SAEGUARD_CACHE, else ~/.cache/saeguard. Progress on stderr; an interrupted "
                            + "download resumes."})
    static final class Pull implements Callable<Integer> {
        @Parameters(index = "0", paramLabel = "RELEASE", description = "SAELens release, e.g. gemma-scope-2b-pt-res-canonical")
        String release;

        @Parameters(index = "1", paramLabel = "SAE_ID", description = "SAE id in the release, e.g. layer_20/width_16k/canonical")
        String saeId;

        @Option(names = "--cache", paramLabel = "DIR", description = "cache root (default: $SAEGUARD_CACHE, else ~/.cache/saeguard)")
        Path cache;

        @Option(names = "--revision", paramLabel = "R", defaultValue = "main",
                description = "branch, tag or commit of the hub repository (default ${DEFAULT-VALUE})")
        String revision;

        @Option(names = "--refresh", description = "ask the hub what commit the revision names now, even when the cache has it")
        boolean refresh;

        @Override
        public Integer call() throws Exception {
            PrintStream err = System.err;
            PretrainedSae sae = SaeReleases.bundled().find(release, saeId);
            HubSettings settings = HubSettings.fromEnvironment(System.getenv(), Optional.ofNullable(cache));
            err.printf("%s: %s at %s, path %s (%s)%n", sae.name(), sae.repoId(), revision, sae.path(), sae.conversion().wireName());
            SaePuller.Pulled pulled = new SaePuller(settings, new StderrProgress(err)).pull(sae, revision, refresh);
            err.println(pulled.downloaded() ? "downloaded commit " + pulled.commit() : "in the cache (commit " + pulled.commit() + ")");
            System.out.println(pulled.directory());
            System.out.flush();
            return 0;
        }
    }

    /** One line per file start and a progress line at most once a second, on stderr. */
    private record StderrProgress(PrintStream err) implements SaePuller.Listener {
        @Override
        public void downloading(String path, URI url, long size, long resumeFrom) {
            err.printf("%s: %s (%s)%s%n", path, url, bytes(size), resumeFrom > 0 ? ", resuming at " + bytes(resumeFrom) : "");
        }

        @Override
        public void progress(String path, long done, long total) {
            err.printf(Locale.ROOT, "  %s %s / %s (%.0f%%)%n", path, bytes(done), bytes(total), total > 0 ? 100.0 * done / total : 100.0);
        }

        private static String bytes(long n) {
            return n >= 1 << 20 ? String.format(Locale.ROOT, "%.1f MiB", n / 1048576.0) : n + " B";
        }
    }
}
