package io.saeguard.sidecar.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** The command line's help texts and its one-line error report, without running a command. */
class MainTest {
    @Test
    void everyCommandsSummaryInTheCommandListIsACompleteSentence() {
        // Given every command and subcommand
        List<CommandLine> commands = all(Main.commandLine());

        // When the command lists show each one's summary (picocli: the header's first line, else the description's)
        // Then each ends a sentence
        for (CommandLine c : commands) {
            CommandLine.Model.UsageMessageSpec usage = c.getCommandSpec().usageMessage();
            String[] lines = usage.header().length > 0 ? usage.header() : usage.description();
            assertThat(lines).as("%s's header or description", c.getCommandSpec().qualifiedName()).isNotEmpty();
            assertThat(lines[0].strip()).as("%s's summary", c.getCommandSpec().qualifiedName()).endsWith(".");
        }
    }

    @Test
    void everyCommandsHelpRendersWithoutAPicocliFormatWarning() {
        // Given every command and subcommand
        List<CommandLine> commands = all(Main.commandLine());

        // When each one's --help is rendered (picocli warns on stderr about a format string it cannot format)
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        PrintStream old = System.err;
        List<String> usages = new ArrayList<>();
        try {
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            commands.forEach(c -> usages.add(c.getUsageMessage()));
        } finally {
            System.setErr(old);
        }

        // Then no warning was printed and no help shows an unformatted '%%'
        assertThat(err.toString(StandardCharsets.UTF_8)).isEmpty();
        assertThat(usages).hasSameSizeAs(commands).noneMatch(u -> u.contains("%%") || u.contains("%n"));
    }

    @Test
    void anErrorWithoutAMessageIsReportedByItsClassNotAsNull() {
        // Given a timeout with no message, as Future.get throws it
        TimeoutException e = new TimeoutException();

        // When described for the error line
        String text = Main.describe(e);

        // Then it names what happened
        assertThat(text).isEqualTo("java.util.concurrent.TimeoutException");
    }

    @Test
    void aWrapperWithoutAMessageIsReportedByItsCausesMessage() {
        // Given a message-less exception around one that says what went wrong
        RuntimeException e = new RuntimeException(null, new IllegalStateException("broker said no"));

        // When described
        String text = Main.describe(e);

        // Then the cause's message is the report
        assertThat(text).isEqualTo("broker said no");
    }

    @Test
    void aWrappersMessageIsFollowedByItsCausesReasonOnce() {
        // Given Kafka's wrapper around the configuration error it hides, and a cause that repeats a message
        IllegalStateException e = new IllegalStateException("Failed to create new KafkaAdminClient",
                new IllegalArgumentException("request.timeout.ms must not exceed default.api.timeout.ms",
                        new RuntimeException("Failed to create new KafkaAdminClient")));

        // When described
        String text = Main.describe(e);

        // Then both say their part, the repeated one once
        assertThat(text).isEqualTo("Failed to create new KafkaAdminClient: request.timeout.ms must not exceed default.api.timeout.ms");
    }

    private static List<CommandLine> all(CommandLine root) {
        List<CommandLine> out = new ArrayList<>();
        out.add(root);
        root.getSubcommands().values().stream().distinct().forEach(c -> out.addAll(all(c)));
        return out;
    }
}
