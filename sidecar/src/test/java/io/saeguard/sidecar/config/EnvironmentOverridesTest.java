package io.saeguard.sidecar.config;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.LogEvent;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.appender.AbstractAppender;
import org.apache.logging.log4j.core.config.Property;
import org.junit.jupiter.api.Test;

class EnvironmentOverridesTest {
    /** A config record tree as {@link ConfigFile} is one: sections are records, scalars are keys. */
    record Root(Section section, String top, List<String> files, Map<String, String> props) {
        record Section(Integer addedKey, Boolean flag) {
        }
    }

    @Test
    void aKeyAddedToARecordBecomesOverridableWithNoOtherList() {
        // When
        Map<String, String> variables = EnvironmentOverrides.variables(Root.class);

        // Then
        assertThat(variables).containsExactly(Map.entry("SAEGUARD_SECTION_ADDED_KEY", "section.added_key"),
                Map.entry("SAEGUARD_SECTION_FLAG", "section.flag"), Map.entry("SAEGUARD_TOP", "top"));
    }

    @Test
    void theSidecarsOverridableKeysAreTheScalarKeysItAlwaysHad() {
        // Given: the hand-written list these overrides replace (ConfigLoader.SCALARS), plus the HTTP auth and TLS keys and
        // metrics.full_encode_fraction, full_encode_max_fraction and sample_precision, allow_unverified_detectors, batching.decode_threads, batching.flush_on_idle and
        // judge_cascade since
        List<String> before = List.of("kafka.bootstrap", "kafka.group", "kafka.instance_id", "engine.device", "engine.threads",
                "engine.djl_cache", "engine.gpu_f16", "engine.cpu_bf16", "engine.gpu_bf16", "batching.max_batch_tokens", "batching.max_delay_ms",
                "batching.max_inflight_tokens", "batching.resume_inflight_tokens", "batching.max_record_tokens", "batching.decode_threads", "batching.flush_on_idle", "delivery", "http.host",
                "http.port", "state.request_ttl_ms", "state.max_requests", "shutdown.drain_timeout_ms", "metrics.top_features",
                "metrics.fire_rate_half_life_tokens", "metrics.dead_window_tokens", "metrics.fvu_sample_rate", "metrics.calibration_tokens",
                "metrics.full_encode_fraction", "metrics.full_encode_max_fraction", "metrics.sample_precision",
                "prompts.model", "prompts.tokenizer", "prompts.model_name", "prompts.hook", "prompts.max_tokens", "prompts.max_batch_prompts",
                "prompts.excerpts", "prompts.excerpt_context_chars", "http.auth.mode", "http.auth.metrics", "http.tls.cert", "http.tls.key",
                "http.tls.client_ca", "allow_unverified_detectors", "judge_cascade");

        // Then
        assertThat(EnvironmentOverrides.variables(ConfigFile.class).values()).containsExactlyInAnyOrderElementsOf(before);
        assertThat(EnvironmentOverrides.variables(ConfigFile.class)).containsEntry("SAEGUARD_BATCHING_MAX_DELAY_MS", "batching.max_delay_ms");
    }

    @Test
    void anUnknownSaeguardVariableIsWarnedOnceByNameAndTheProjectsOtherVariablesAreNot() throws Exception {
        // Given
        List<String> warnings = new CopyOnWriteArrayList<>();
        AbstractAppender capture = new AbstractAppender("capture-" + System.nanoTime(), null, null, true, Property.EMPTY_ARRAY) {
            @Override
            public void append(LogEvent event) {
                if (event.getLevel() == Level.WARN) {
                    warnings.add(event.getMessage().getFormattedMessage());
                }
            }
        };
        capture.start();
        org.apache.logging.log4j.core.Logger logger = ((LoggerContext) LogManager.getContext(false)).getLogger(EnvironmentOverrides.class.getName());
        logger.addAppender(capture);
        Map<String, String> env = Map.of("SAEGUARD_HTTP_PROT", "9090", "SAEGUARD_DEBUG", "1", "SAEGUARD_BENCH_DEVICE", "cpu",
                "SAEGUARD_REQUIRE_TOOLS", "1", "SAEGUARD_HTTP_PORT", "0", "OTHER_HTTP_PROT", "1");
        try {
            // When
            ConfigLoader.load(Optional.empty(), env);
            ConfigLoader.load(Optional.empty(), env);
        } finally {
            logger.removeAppender(capture);
        }

        // Then
        assertThat(warnings).singleElement().asString().startsWith("SAEGUARD_HTTP_PROT is set but is not a config override");
        assertThat(EnvironmentOverrides.unknown(env, ConfigFile.class)).containsExactly("SAEGUARD_HTTP_PROT");
    }
}
