package io.saeguard.sidecar.cli;

import io.saeguard.detectors.DetectorDefinition;
import io.saeguard.detectors.DetectorDefinitions;
import io.saeguard.sae.Sae;
import io.saeguard.sae.format.SaeLoader;
import io.saeguard.sidecar.config.ConfigLoader;
import io.saeguard.sidecar.config.SidecarConfig;
import io.saeguard.sidecar.kafka.HistoryReader;
import io.saeguard.sidecar.pipeline.CheckEngine;
import io.saeguard.sidecar.replay.Replay;
import io.saeguard.sidecar.replay.ReplayReport;
import io.saeguard.topics.catalog.TopicCatalog;
import io.saeguard.topics.catalog.TopicRole;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.UUID;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code saeguard replay}: decides recorded history with a (new) config and compares with the decisions production
 * recorded for the same records (issue 20, item 2; {@link Replay}).
 */
@Command(name = "replay", mixinStandardHelpOptions = true, description = {"Decides recorded history with a config and diffs it with the recorded decisions.",
        "Reads the activation (and, with prompts:, prompt) records from --from to --to by timestamp, with no consumer group and "
                + "read_committed, decides them in process as 'saeguard run' would with the config's SAEs and detectors, and compares each "
                + "decision with the one on the decisions topic for the same request and position. Produces nothing: safe beside "
                + "production. TIME: ISO-8601 with a zone (2026-12-07T03:00:00Z), a date (UTC) or epoch milliseconds. Progress goes to stderr, a "
                + "summary to stdout."})
final class ReplayCommand implements Callable<Integer> {
    @Option(names = "--config", required = true, description = "the config to decide with (YAML); its kafka: and topics: say where the history is")
    Path config;

    @Option(names = "--from", required = true, paramLabel = "TIME", description = "first record time (inclusive)")
    String from;

    @Option(names = "--to", paramLabel = "TIME", description = "last record time (inclusive; default: the end of each partition at the start)")
    String to;

    @Option(names = "--out", required = true, description = "JSON report to write")
    Path out;

    @Option(names = "--report", description = "Markdown report to write")
    Path report;

    @Option(names = "--in-flight", defaultValue = "256", description = "records queued at the engine at once, so they batch (default ${DEFAULT-VALUE})")
    int inFlight;

    @Override
    public Integer call() throws Exception {
        long fromMs = CommandLineTime.parse("--from", from);
        OptionalLong toMs = to == null ? OptionalLong.empty() : OptionalLong.of(CommandLineTime.parse("--to", to));
        if (toMs.isPresent() && toMs.getAsLong() < fromMs) {
            throw new IllegalArgumentException("--to (" + to + ") is before --from (" + from + "); give a --to at or after --from");
        }
        SidecarConfig cfg = ConfigLoader.load(Optional.of(config));
        String bootstrap = cfg.kafka().bootstrap().orElseThrow(() -> new IllegalArgumentException(config
                + ": kafka.bootstrap is not set, so there is no history to replay; set it to the production cluster (README, Configuration)"));
        Map<String, Sae> saes = new LinkedHashMap<>();
        Map<String, Integer> dIns = new LinkedHashMap<>();
        for (SidecarConfig.SaeEntry e : cfg.saes()) {
            Sae sae = SaeLoader.load(e.path());
            saes.put(e.id(), sae);
            dIns.put(e.id(), sae.config().dIn());
        }
        List<DetectorDefinition> definitions = DetectorDefinitions.loadAll(cfg.detectors());
        TopicCatalog catalog = TopicCatalog.bundled().withNames(cfg.topics());
        Map<TopicRole, String> topics = new EnumMap<>(TopicRole.class);
        for (TopicRole role : TopicRole.values()) {
            topics.put(role, catalog.get(role).name());
        }
        ReplayReport r;
        try (CheckEngine engine = CheckEngine.start(cfg, saes, definitions, Duration.ofMinutes(5));
                HistoryReader reader = new HistoryReader(bootstrap, "saeguard-replay-" + UUID.randomUUID(), cfg.kafka().consumer(),
                        "check the config's topics: section")) {
            r = new Replay(cfg, dIns, engine, topics, inFlight, System.err).run(reader, fromMs, toMs);
        }
        Files.writeString(out, r.json());
        if (report != null) {
            Files.writeString(report, r.markdown());
        }
        System.out.println(r.summary());
        System.out.println("report: " + out + (report != null ? ", " + report : ""));
        return 0;
    }
}
