package io.saeguard.sidecar.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code saeguard} command line. Every command of the product lives under it. */
@Command(name = "saeguard", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = "Streaming SAE monitoring and guardrail sidecar for LLM deployments.",
        subcommands = {RunCommand.class, BrokerCommand.class, TopicsCommand.class, InspectCommand.class, EncodeCommand.class, SelectCommand.class,
                ActivationsCommand.class, EvalCommand.class, ReplayCommand.class, CompareSaesCommand.class, DemoCommand.class, CaptureCommand.class,
                ReviewsCommand.class, TrainCommand.class, SaeCommand.class,
                CommandLine.HelpCommand.class})
public final class Main {
    /** How deep {@link #describe} follows a chain of causes. */
    private static final int MAX_CAUSES = 5;

    private Main() {
    }

    public static void main(String[] args) {
        System.exit(execute(args));
    }

    /** Runs a command line and returns its exit code; used by tests without exiting the JVM. */
    public static int execute(String... args) {
        return commandLine().execute(args);
    }

    /** The command line with its failure handler, not yet run. */
    static CommandLine commandLine() {
        return new CommandLine(new Main())
                .setCaseInsensitiveEnumValuesAllowed(true)
                .setExecutionExceptionHandler(Main::reportFailure);
    }

    /**
     * A failed command prints one line that says what went wrong, not a stack trace, under the
     * command's full name ({@code saeguard topics create: error: ...}); the trace is printed only
     * with {@code SAEGUARD_DEBUG=1}.
     */
    private static int reportFailure(Exception e, CommandLine cmd, CommandLine.ParseResult parsed) {
        cmd.getErr().println(cmd.getCommandSpec().qualifiedName() + ": error: " + describe(e));
        if ("1".equals(System.getenv("SAEGUARD_DEBUG"))) {
            e.printStackTrace(cmd.getErr());
        }
        cmd.getErr().flush();
        return 1;
    }

    /**
     * What went wrong, never {@code null}: the exception's message followed by those of its causes
     * that add something (a wrapper such as Kafka's "Failed to create new KafkaAdminClient" hides its
     * reason in the cause), or, where nothing in the chain has a message, the exception's class.
     */
    static String describe(Throwable e) {
        StringBuilder text = new StringBuilder();
        int depth = 0;
        for (Throwable t = e; t != null && depth < MAX_CAUSES; t = t.getCause() == t ? null : t.getCause(), depth++) {
            String m = t.getMessage();
            if (m == null || m.isBlank() || text.indexOf(m) >= 0) {
                continue;
            }
            text.append(text.length() == 0 ? "" : ": ").append(m);
        }
        if (text.length() == 0) {
            text.append(e.getClass().getName());
            if (e.getCause() != null) {
                text.append(" (caused by ").append(e.getCause().getClass().getName()).append(')');
            }
        }
        return text.toString();
    }
}
