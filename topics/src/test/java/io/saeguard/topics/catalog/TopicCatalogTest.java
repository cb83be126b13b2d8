package io.saeguard.topics.catalog;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

class TopicCatalogTest {
    private static final String ONE = """
            topics:
              - role: %s
                name: saeguard.%s
                partitions: 3
                replication: 1
                configs: {cleanup.policy: delete, retention.ms: "1000", max.message.bytes: "1024"}
            """;

    @Test
    void bundledCatalogHasEveryRoleWithTheDesignNamesAndTheRequiredConfigs() {
        TopicCatalog c = TopicCatalog.bundled();

        for (TopicRole role : TopicRole.values()) {
            TopicSpec spec = c.get(role);
            assertThat(spec.name()).isEqualTo("saeguard." + role.key().replace('_', '-'));
            assertThat(spec.configs()).containsKeys("cleanup.policy", "retention.ms", "max.message.bytes");
        }
        assertThat(c.get(TopicRole.STEERING).configs()).containsEntry("cleanup.policy", "compact");
    }

    @Test
    void bundledCopyIsTheRepositoryFile() throws Exception {
        // The jar's copy must not drift from topics/topics.yaml (Maven runs tests in the module dir).
        TopicCatalog fromFile = TopicCatalog.load(Path.of("topics.yaml"));

        for (TopicRole role : TopicRole.values()) {
            assertThat(TopicCatalog.bundled().get(role)).isEqualTo(fromFile.get(role));
        }
    }

    @Test
    void aStateTopicWithOtherPartitionsThanTheInputTopicsIsRefused() throws Exception {
        String yaml = Files.readString(Path.of("topics.yaml"));
        int at = yaml.indexOf("role: state");
        String changed = yaml.substring(0, at) + yaml.substring(at).replaceFirst("partitions: 12", "partitions: 6");

        assertThatThrownBy(() -> parse(changed)).hasMessageContaining("role 'state' has 6 partitions but role 'activations' has 12");
    }

    @Test
    void missingRoleIsNamed() {
        assertThatThrownBy(() -> parse(ONE.formatted("alerts", "alerts")))
                .hasMessageContaining("test.yaml").hasMessageContaining("no entry for role 'activations'");
    }

    @Test
    void unknownKeyIsRejectedWithTheAllowedKeys() {
        String yaml = ONE.formatted("alerts", "alerts").replace("partitions: 3", "partitions: 3\n    partiton: 4");

        assertThatThrownBy(() -> parse(yaml)).hasMessageContaining("topics[0]").hasMessageContaining("unknown key 'partiton'");
    }

    @Test
    void missingRequiredConfigIsNamed() {
        String yaml = ONE.formatted("alerts", "alerts").replace("retention.ms: \"1000\", ", "");

        assertThatThrownBy(() -> parse(yaml)).hasMessageContaining("config 'retention.ms' is required");
    }

    @Test
    void renamingKeepsEverythingElse() {
        TopicCatalog c = TopicCatalog.bundled().withNames(Map.of(TopicRole.ALERTS, "team.alerts"));

        assertThat(c.get(TopicRole.ALERTS).name()).isEqualTo("team.alerts");
        assertThat(c.get(TopicRole.ALERTS).partitions()).isEqualTo(TopicCatalog.bundled().get(TopicRole.ALERTS).partitions());
    }

    private static TopicCatalog parse(String yaml) throws Exception {
        return TopicCatalog.parse(yaml.getBytes(StandardCharsets.UTF_8), "test.yaml");
    }
}
