package io.saeguard.sidecar.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code saeguard} command line. Every command of the product lives under it. */
@Command(name = "saeguard", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = "Streaming SAE monitoring and guardrail sidecar for LLM deployments.",
        subcommands = {RunCommand.class, BrokerCommand.class, TopicsCommand.class, InspectCommand.class, EncodeCommand.class, SelectCommand.class,
                ActivationsCommand.class, DemoCommand.class,
                TrainCommand.class,
                CommandLine.HelpCommand.class})
public final class Main {
    private Main() {
    }

    public static void main(String[] args) {
        System.exit(execute(args));
    }

    /** Runs a command line and returns its exit code; used by tests without exiting the JVM. */
    public static int execute(String... args) {
        return new CommandLine(new Main())
                .setCaseInsensitiveEnumValuesAllowed(true)
                .setExecutionExceptionHandler(Main::reportFailure)
                .execute(args);
    }

    /**
     * A failed command prints one line that says what went wrong, not a stack trace; the trace is
     * printed only with {@code SAEGUARD_DEBUG=1}.
     */
    private static int reportFailure(Exception e, CommandLine cmd, CommandLine.ParseResult parsed) {
        cmd.getErr().println("saeguard " + cmd.getCommandName() + ": error: " + e.getMessage());
        if ("1".equals(System.getenv("SAEGUARD_DEBUG"))) {
            e.printStackTrace(cmd.getErr());
        }
        cmd.getErr().flush();
        return 1;
    }
}
