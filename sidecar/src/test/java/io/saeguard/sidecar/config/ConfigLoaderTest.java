package io.saeguard.sidecar.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.saeguard.topics.catalog.TopicRole;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ConfigLoaderTest {
    @TempDir
    Path dir;

    private Path write(String yaml) throws Exception {
        Path f = dir.resolve("saeguard.yaml");
        Files.writeString(f, yaml);
        return f;
    }

    @Test
    void theIssuesMinimalFileLoadsWithPathsResolvedAgainstTheFile() throws Exception {
        Path f = write("""
                kafka:
                  bootstrap: 127.0.0.1:9092     # absent -> embedded broker, topics created
                  group: saeguard
                saes:
                  - id: gemma-2b-l20-16k
                    path: /models/gemma-scope-2b-pt-res/layer_20/width_16k/average_l0_71
                    model: gemma-2-2b
                    hook: blocks.20.hook_resid_post
                detectors:
                  - detectors/catalog/toxicity.yaml
                http:
                  port: 8080
                """);

        SidecarConfig c = ConfigLoader.load(Optional.of(f), Map.of());

        assertThat(c.kafka().bootstrap()).contains("127.0.0.1:9092");
        assertThat(c.saes()).singleElement().satisfies(s -> {
            assertThat(s.id()).isEqualTo("gemma-2b-l20-16k");
            assertThat(s.model()).contains("gemma-2-2b");
            assertThat(s.maxActive()).isEqualTo(256);
            assertThat(s.specialTokenIds()).isEmpty();
        });
        assertThat(c.detectors()).containsExactly(dir.resolve("detectors/catalog/toxicity.yaml"));
        assertThat(c.delivery()).isEqualTo(SidecarConfig.Delivery.AT_LEAST_ONCE);
        assertThat(c.batching().maxBatchTokens()).isEqualTo(512);
    }

    @Test
    void anSaeWithBothPathAndReleaseIsRefusedSayingToGiveOne() throws Exception {
        Path f = write("saes:\n  - id: a\n    path: /x\n    release: gpt2-small-res-jb\n    sae_id: blocks.0.hook_resid_pre\n");

        assertThatThrownBy(() -> ConfigLoader.load(Optional.of(f), Map.of())).isInstanceOf(ConfigException.class)
                .hasMessageContaining(f.toString()).hasMessageContaining("saes[0] has both path and release")
                .hasMessageContaining("give exactly one");
    }

    @Test
    void anSaeWithNeitherPathNorReleaseIsRefused() throws Exception {
        Path f = write("saes:\n  - id: a\n    model: m\n");

        assertThatThrownBy(() -> ConfigLoader.load(Optional.of(f), Map.of())).isInstanceOf(ConfigException.class)
                .hasMessageContaining("saes[0] has neither path nor release");
    }

    @Test
    void aReleaseWithoutSaeIdIsRefusedWithAnExampleId() throws Exception {
        Path f = write("saes:\n  - id: a\n    release: gemma-scope-2b-pt-res-canonical\n");

        assertThatThrownBy(() -> ConfigLoader.load(Optional.of(f), Map.of())).isInstanceOf(ConfigException.class)
                .hasMessageContaining("saes[0].sae_id is required with release 'gemma-scope-2b-pt-res-canonical'");
    }

    @Test
    void anSaeIdBesideAPathIsRefused() throws Exception {
        Path f = write("saes:\n  - id: a\n    path: /x\n    sae_id: blocks.0.hook_resid_pre\n");

        assertThatThrownBy(() -> ConfigLoader.load(Optional.of(f), Map.of())).isInstanceOf(ConfigException.class)
                .hasMessageContaining("saes[0].sae_id goes with 'release', not with 'path'");
    }

    @Test
    void anUnknownReleaseIsRefusedNamingTheKeyAndCloseReleases() throws Exception {
        Path f = write("saes:\n  - id: a\n    release: gemma-scope-2b-pt-rez\n    sae_id: x\n");

        assertThatThrownBy(() -> ConfigLoader.load(Optional.of(f), Map.of())).isInstanceOf(ConfigException.class)
                .hasMessageContaining("saes[0] (release 'gemma-scope-2b-pt-rez', sae_id 'x')").hasMessageContaining("gemma-scope-2b-pt-res");
    }

    @Test
    void offlineAReleaseMissingFromTheCacheIsRefusedNamingTheUrlItNeeded() throws Exception {
        Path f = write("saes:\n  - id: a\n    release: gpt2-small-res-jb\n    sae_id: blocks.0.hook_resid_pre\n");

        assertThatThrownBy(() -> ConfigLoader.load(Optional.of(f), Map.of("HF_HUB_OFFLINE", "1", "SAEGUARD_CACHE",
                dir.resolve("cache").toString(), "HF_ENDPOINT", "http://hub.invalid"))).isInstanceOf(ConfigException.class)
                .hasMessageContaining("HF_HUB_OFFLINE")
                .hasMessageContaining("http://hub.invalid/api/models/jbloom/GPT2-Small-SAEs-Reformatted/revision/main");
    }

    @Test
    void environmentOverridesTheFile() throws Exception {
        Path f = write("kafka:\n  bootstrap: a:1\nbatching:\n  max_delay_ms: 5\n");

        SidecarConfig c = ConfigLoader.load(Optional.of(f), Map.of("SAEGUARD_KAFKA_BOOTSTRAP", "b:2", "SAEGUARD_BATCHING_MAX_DELAY_MS", "9",
                "SAEGUARD_HTTP_PORT", "0"));

        assertThat(c.kafka().bootstrap()).contains("b:2");
        assertThat(c.batching().maxDelay()).isEqualTo(Duration.ofMillis(9));
        assertThat(c.http().port()).isZero();
    }

    @Test
    void cpuBf16IsOffByDefaultAndSetByFileOrEnvironment() throws Exception {
        assertThat(ConfigLoader.load(Optional.empty(), Map.of()).engine().cpuBf16()).isFalse();
        assertThat(ConfigLoader.load(Optional.of(write("engine:\n  cpu_bf16: true\n")), Map.of()).engine().cpuBf16()).isTrue();
        assertThat(ConfigLoader.load(Optional.empty(), Map.of("SAEGUARD_ENGINE_CPU_BF16", "true")).engine().cpuBf16()).isTrue();
        assertThatThrownBy(() -> ConfigLoader.load(Optional.of(write("engine:\n  cpu_bf16: maybe\n")), Map.of()))
                .isInstanceOf(ConfigException.class).hasMessageContaining("engine.cpu_bf16");
    }

    @Test
    void noFileGivesDefaultsAndTheEmbeddedBroker() throws Exception {
        SidecarConfig c = ConfigLoader.load(Optional.empty(), Map.of());

        assertThat(c.kafka().bootstrap()).isEmpty();
        assertThat(c.kafka().group()).isEqualTo("saeguard");
        assertThat(c.saes()).isEmpty();
    }

    @Test
    void unknownKeyIsRejectedNamingKeyAndFile() throws Exception {
        Path f = write("batching:\n  max_batch_token: 64\n");

        assertThatThrownBy(() -> ConfigLoader.load(Optional.of(f), Map.of())).isInstanceOf(ConfigException.class)
                .hasMessageContaining(f.toString()).hasMessageContaining("unknown key 'batching.max_batch_token'")
                .hasMessageContaining("max_batch_tokens");
    }

    @Test
    void kafkaClientPropertiesPassThroughAndSecretsAreRedacted() throws Exception {
        Path f = write("kafka:\n  consumer:\n    max.poll.records: 50\n  producer:\n    sasl.jaas.config: 'secret stuff'\n"
                + "topics:\n  decisions: team.decisions\n");

        SidecarConfig c = ConfigLoader.load(Optional.of(f), Map.of());

        assertThat(c.kafka().consumer()).containsEntry("max.poll.records", "50");
        assertThat(c.kafka().producer()).containsEntry("sasl.jaas.config", "secret stuff");
        assertThat(c.topics()).containsEntry(TopicRole.DECISIONS, "team.decisions");
        assertThat(c.toString()).doesNotContain("secret stuff").contains("[redacted]");
    }

    @Test
    void inflightLimitsDefaultToEightBatchesAndHalfThat() throws Exception {
        SidecarConfig.Batching d = ConfigLoader.load(Optional.of(write("http:\n  port: 8080\n")), Map.of()).batching();
        assertThat(d.maxBatchTokens()).isEqualTo(512);
        assertThat(d.maxInflightTokens()).isEqualTo(4096);
        assertThat(d.resumeInflightTokens()).isEqualTo(2048);
        SidecarConfig.Batching big = ConfigLoader.load(Optional.of(write("batching:\n  max_batch_tokens: 4096\n")), Map.of()).batching();
        assertThat(big.maxInflightTokens()).as("scales with max_batch_tokens").isEqualTo(32768);
        assertThat(big.resumeInflightTokens()).isEqualTo(16384);
        SidecarConfig.Batching set = ConfigLoader.load(Optional.of(write("batching:\n  max_inflight_tokens: 1000\n")), Map.of()).batching();
        assertThat(set.maxInflightTokens()).isEqualTo(1000);
        assertThat(set.resumeInflightTokens()).isEqualTo(500);
    }

    @Test
    void specialTokenIdsOfAnSaeAreReadAndCheckedAsIds() throws Exception {
        SidecarConfig c = ConfigLoader.load(Optional.of(write("saes:\n  - id: a\n    path: sae\n    special_token_ids: [2, 0, 1]\n")), Map.of());

        assertThat(c.saes()).singleElement().satisfies(s -> assertThat(s.specialTokenIds()).containsExactlyInAnyOrder(0, 1, 2));
        assertThatThrownBy(() -> ConfigLoader.load(Optional.of(write("saes:\n  - id: a\n    path: sae\n    special_token_ids: [2, -1]\n")),
                Map.of())).hasMessageContaining("'saes[0].special_token_ids' holds '-1', which is not one of the token ids (an integer >= 0)");
        assertThatThrownBy(() -> ConfigLoader.load(Optional.of(write("saes:\n  - id: a\n    path: sae\n    special_token_ids: 2\n")),
                Map.of())).hasMessageContaining("'saes[0].special_token_ids' must be a list of token ids");
    }

    @Test
    void stringValuesTakeEnvironmentVariablesWithDefaultsAndUnsetOnesAreNamed() throws Exception {
        Path f = write("""
                kafka:
                  bootstrap: ${BROKER}:9092
                  producer:
                    sasl.jaas.config: ${JAAS}
                    client.rack: ${RACK:-rack-a}
                    note: costs $${literal}
                saes:
                  - id: a
                    path: ${MODELS}/sae
                """);

        SidecarConfig c = ConfigLoader.load(Optional.of(f), Map.of("BROKER", "kafka-0", "JAAS", "secret-jaas", "MODELS", "/m"));

        assertThat(c.kafka().bootstrap()).contains("kafka-0:9092");
        assertThat(c.kafka().producer()).containsEntry("sasl.jaas.config", "secret-jaas").containsEntry("client.rack", "rack-a")
                .containsEntry("note", "costs ${literal}");
        assertThat(c.saes().get(0).path()).isEqualTo(Path.of("/m/sae"));
        assertThat(c.kafka().toString()).doesNotContain("secret-jaas");
        assertThatThrownBy(() -> ConfigLoader.load(Optional.of(f), Map.of("BROKER", "b", "MODELS", "/m")))
                .hasMessageContaining("'kafka.producer.sasl.jaas.config' uses ${JAAS}, but that environment variable is not set");
        assertThat(ConfigLoader.load(Optional.of(write("engine:\n  djl_cache: ~/.cache/x\n")), Map.of()).engine().djlCache())
                .contains(Path.of(System.getProperty("user.home"), ".cache/x"));
    }

    @Test
    void badValuesNameTheKey() throws Exception {
        assertThatThrownBy(() -> ConfigLoader.load(Optional.of(write("engine:\n  gpu_f16: true\n  gpu_bf16: true\n")), Map.of()))
                .hasMessageContaining("'engine.gpu_f16' and 'engine.gpu_bf16' exclude each other");
        assertThat(ConfigLoader.load(Optional.of(write("engine:\n  gpu_bf16: true\n")), Map.of()).engine().gpuBf16()).isTrue();
        assertThatThrownBy(() -> ConfigLoader.load(Optional.of(write("delivery: sometimes\n")), Map.of()))
                .hasMessageContaining("delivery must be at-least-once or exactly-once");
        assertThatThrownBy(() -> ConfigLoader.load(Optional.of(write("http:\n  port: eighty\n")), Map.of()))
                .hasMessageContaining("'http.port' must be an integer");
        assertThatThrownBy(() -> ConfigLoader.load(Optional.of(write("saes:\n  - id: a\n")), Map.of()))
                .hasMessageContaining("saes[0] has neither path nor release");
        assertThatThrownBy(() -> ConfigLoader.load(Optional.of(write("batching:\n  max_inflight_tokens: 10\n  resume_inflight_tokens: 10\n")),
                Map.of())).hasMessageContaining("must be below max_inflight_tokens");
    }

    @Test
    void theSamplePrecisionIsAutoUnlessSetAndAnUnknownOneNamesTheChoices() throws Exception {
        // Given / When / Then
        assertThat(ConfigLoader.load(Optional.of(write("http:\n  port: 8080\n")), Map.of()).metrics().samplePrecision())
                .isEqualTo(SidecarConfig.MetricsSettings.SamplePrecision.AUTO);
        assertThat(ConfigLoader.load(Optional.of(write("metrics:\n  sample_precision: f32\n")), Map.of()).metrics().samplePrecision())
                .isEqualTo(SidecarConfig.MetricsSettings.SamplePrecision.F32);
        assertThat(ConfigLoader.load(Optional.empty(), Map.of("SAEGUARD_METRICS_SAMPLE_PRECISION", "bf16")).metrics().samplePrecision())
                .isEqualTo(SidecarConfig.MetricsSettings.SamplePrecision.BF16);
        assertThatThrownBy(() -> ConfigLoader.load(Optional.of(write("metrics:\n  sample_precision: f16\n")), Map.of()))
                .hasMessageContaining("metrics.sample_precision must be auto, f32 or bf16, found 'f16'");
    }

    @Test
    void theFullEncodeSampleGrowsUpToItsMaximumWhichIsNeverBelowItsFloor() throws Exception {
        // Defaults: 1 % at least, up to 5 %
        SidecarConfig.MetricsSettings d = ConfigLoader.load(Optional.of(write("http:\n  port: 8080\n")), Map.of()).metrics();
        assertThat(d.fullEncodeFraction()).isEqualTo(0.01);
        assertThat(d.fullEncodeMaxFraction()).isEqualTo(0.05);
        // A floor above the default maximum raises the maximum with it (a fixed sample)
        SidecarConfig.MetricsSettings high = ConfigLoader.load(Optional.of(write("metrics:\n  full_encode_fraction: 0.2\n")), Map.of()).metrics();
        assertThat(high.fullEncodeMaxFraction()).isEqualTo(0.2);
        // Both set
        SidecarConfig.MetricsSettings both = ConfigLoader.load(Optional.of(write(
                "metrics:\n  full_encode_fraction: 0.02\n  full_encode_max_fraction: 0.5\n")), Map.of()).metrics();
        assertThat(both.fullEncodeFraction()).isEqualTo(0.02);
        assertThat(both.fullEncodeMaxFraction()).isEqualTo(0.5);
        // A maximum below the floor is an error naming both keys
        assertThatThrownBy(() -> ConfigLoader.load(Optional.of(write("metrics:\n  full_encode_fraction: 0.1\n  full_encode_max_fraction: 0.05\n")),
                Map.of())).hasMessageContaining("metrics.full_encode_max_fraction (0.05) must be at least metrics.full_encode_fraction (0.1)");
    }

    @Test
    void anInvalidOverrideIsReportedNamingTheVariableNotTheFile() throws Exception {
        Path f = write("http:\n  port: 8080\n");

        assertThatThrownBy(() -> ConfigLoader.load(Optional.of(f), Map.of("SAEGUARD_HTTP_PORT", "abc"))).isInstanceOf(ConfigException.class)
                .hasMessageStartingWith("environment variable SAEGUARD_HTTP_PORT: ")
                .hasMessageContaining("'http.port' must be an integer >= 0, found 'abc'").hasMessageNotContaining(f.toString());
        assertThatThrownBy(() -> ConfigLoader.load(Optional.empty(), Map.of("SAEGUARD_METRICS_FVU_SAMPLE_RATE", "2")))
                .hasMessage("environment variable SAEGUARD_METRICS_FVU_SAMPLE_RATE: 'metrics.fvu_sample_rate' must be a number in [0, 1], "
                        + "found '2'");
    }

    @Test
    void theSameBadValueInTheFileIsReportedNamingTheFile() throws Exception {
        Path f = write("http:\n  port: abc\n");

        assertThatThrownBy(() -> ConfigLoader.load(Optional.of(f), Map.of()))
                .hasMessage(f + ": 'http.port' must be an integer >= 0, found 'abc'");
    }

    @Test
    void aValueOfTheWrongTypeNamesTheKeyAndTheExpectedType() throws Exception {
        assertThatThrownBy(() -> ConfigLoader.load(Optional.of(write("engine:\n  cpu_bf16: 1\n")), Map.of()))
                .hasMessageContaining("'engine.cpu_bf16' must be true or false, found '1'");
        assertThatThrownBy(() -> ConfigLoader.load(Optional.of(write("http:\n  port: 1.5\n")), Map.of()))
                .hasMessageContaining("'http.port' must be an integer >= 0, found '1.5'");
        assertThatThrownBy(() -> ConfigLoader.load(Optional.of(write("http:\n  port: 5000000000\n")), Map.of()))
                .as("out of the int range, not truncated").hasMessageContaining("'http.port' must be an integer >= 0, found '5000000000'");
        assertThatThrownBy(() -> ConfigLoader.load(Optional.of(write("http: 8080\n")), Map.of()))
                .hasMessageContaining("'http' must be a mapping (keys: host, port, auth, tls), found '8080'");
        assertThatThrownBy(() -> ConfigLoader.load(Optional.of(write("kafka:\n  consumer:\n    acks: {all: 1}\n")), Map.of()))
                .hasMessageContaining("'kafka.consumer.acks' must be a single value, found a mapping");
        assertThatThrownBy(() -> ConfigLoader.load(Optional.of(write("metrics:\n  watch:\n    my-sae: [12, x]\n")), Map.of()))
                .hasMessageContaining("'metrics.watch.my-sae' holds 'x', which is not one of the feature ids (an integer >= 0)");
        assertThatThrownBy(() -> ConfigLoader.load(Optional.of(write("engine:\n  threads: 0\n")), Map.of()))
                .hasMessageContaining("'engine.threads' must be an integer >= 1, found '0'");
    }

    @Test
    void anUnknownKeyInAListedMappingNamesItsPathAndTheAllowedKeys() throws Exception {
        Path f = write("saes:\n  - id: a\n    path: sae\n    colour: red\n");

        assertThatThrownBy(() -> ConfigLoader.load(Optional.of(f), Map.of())).hasMessage(f + ": unknown key 'saes[0].colour' (allowed here: hook, id, "
                + "max_active, model, path, release, revision, sae_id, special_token_ids): remove it or correct its spelling");
    }

    @Test
    void textValuesFromTheEnvironmentBindToNumbersBooleansAndTheDefaultWhenBlank() throws Exception {
        SidecarConfig c = ConfigLoader.load(Optional.of(write("kafka:\n  group: g\n")), Map.of("SAEGUARD_METRICS_FVU_SAMPLE_RATE", "0.5",
                "SAEGUARD_PROMPTS_MODEL", "builtin:all-minilm-l6-v2", "SAEGUARD_PROMPTS_EXCERPTS", "false", "SAEGUARD_KAFKA_GROUP", " "));

        assertThat(c.metrics().fvuSampleRate()).isEqualTo(0.5);
        assertThat(c.prompts()).hasValueSatisfying(p -> assertThat(p.excerpts()).isFalse());
        assertThat(c.kafka().group()).as("blank is absent").isEqualTo("saeguard");
    }
}
