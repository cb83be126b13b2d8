package io.saeguard.sidecar.config;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import java.util.List;
import java.util.Map;

/**
 * The shape of the sidecar's YAML file, bound by Jackson ({@link ConfigLoader}): the one list of its keys.
 * A component named {@code maxBatchTokens} is the key {@code max_batch_tokens}; every {@code String},
 * {@code Integer}, {@code Boolean} or {@code Double} component reached through records only (not through a list
 * or map) is a scalar key that an environment variable can override ({@link EnvironmentOverrides}). {@code null}
 * means absent: {@link ConfigLoader} applies the defaults, resolves paths and builds {@link SidecarConfig}.
 * Range checks come from the annotations ({@link AtLeast}, {@link Fraction}, {@link Ids}), so adding a key is
 * adding a component here and reading it where {@link SidecarConfig} is built.
 */
record ConfigFile(Kafka kafka, @Describe("a mapping of roles to topic names") Map<String, String> topics, List<Sae> saes,
        @Describe("a list of detector YAML files") List<String> detectors, Engine engine, Batching batching, String delivery, Http http,
        State state, Shutdown shutdown, Metrics metrics, Prompts prompts, Boolean allowUnverifiedDetectors, Boolean judgeCascade) {

    record Kafka(String bootstrap, String group, String instanceId,
            @Describe("a mapping of Kafka consumer property names to values") Map<String, String> consumer,
            @Describe("a mapping of Kafka producer property names to values") Map<String, String> producer,
            @Describe("a mapping of Kafka admin property names to values") Map<String, String> admin) {
    }

    /** One SAE: a local {@code path}, or a SAELens {@code release} + {@code sae_id} (optionally at a hub {@code revision}). */
    record Sae(String id, String path, String release, String saeId, String revision, String model, String hook,
            @AtLeast(1) Integer maxActive, @Ids("token ids") List<Integer> specialTokenIds) {
    }

    record Engine(String device, @AtLeast(1) Integer threads, String djlCache, Boolean gpuF16, Boolean cpuBf16, Boolean gpuBf16) {
    }

    record Batching(@AtLeast(1) Integer maxBatchTokens, @AtLeast(0) Integer maxDelayMs, @AtLeast(1) Integer maxInflightTokens,
            @AtLeast(0) Integer resumeInflightTokens, @AtLeast(1) Integer maxRecordTokens, @AtLeast(1) Integer decodeThreads,
            Boolean flushOnIdle) {
    }

    record Http(String host, @AtLeast(0) Integer port, Auth auth, Tls tls) {
    }

    /** {@code http.auth}: {@code mode} is {@code tokens} (default) or {@code none}; {@code metrics} is {@code open} or {@code read}. */
    record Auth(String mode, String metrics, List<Token> tokens) {
    }

    /** One bearer token: its secret comes from an environment variable or a file, never from this file. */
    record Token(String name, String tokenEnv, String tokenFile, List<String> scopes) {
    }

    /** {@code http.tls}: PEM files; {@code client_ca} turns on mutual TLS (client certificates required). */
    record Tls(String cert, String key, String clientCa) {
    }

    record State(@AtLeast(1) Integer requestTtlMs, @AtLeast(1) Integer maxRequests) {
    }

    record Shutdown(@AtLeast(0) Integer drainTimeoutMs) {
    }

    record Metrics(@AtLeast(0) Integer topFeatures,
            @Describe("a mapping of SAE ids to lists of feature ids, e.g. {my-sae: [12, 345]}") @Ids("feature ids") Map<String, List<Integer>> watch,
            @AtLeast(1) Integer fireRateHalfLifeTokens, @AtLeast(1) Integer deadWindowTokens, @Fraction Double fvuSampleRate,
            @AtLeast(0) Integer calibrationTokens, @Fraction Double fullEncodeFraction, @Fraction Double fullEncodeMaxFraction,
            String samplePrecision) {
    }

    record Prompts(String model, String tokenizer, String modelName, String hook, @AtLeast(2) Integer maxTokens,
            @AtLeast(1) Integer maxBatchPrompts, Boolean excerpts, @AtLeast(0) Integer excerptContextChars) {
    }

    /** An integer key's smallest allowed value. */
    @Retention(RetentionPolicy.RUNTIME)
    @Target(ElementType.RECORD_COMPONENT)
    @interface AtLeast {
        int value();
    }

    /** A number key in [0, 1]. */
    @Retention(RetentionPolicy.RUNTIME)
    @Target(ElementType.RECORD_COMPONENT)
    @interface Fraction {
    }

    /** A list of ids (integers >= 0), or a mapping to such lists; the value names what they are, e.g. "token ids". */
    @Retention(RetentionPolicy.RUNTIME)
    @Target(ElementType.RECORD_COMPONENT)
    @interface Ids {
        String value();
    }

    /** What a list or mapping key holds, for messages ("must be " + value). */
    @Retention(RetentionPolicy.RUNTIME)
    @Target(ElementType.RECORD_COMPONENT)
    @interface Describe {
        String value();
    }
}
