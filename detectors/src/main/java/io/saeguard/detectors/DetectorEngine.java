package io.saeguard.detectors;

import io.saeguard.detectors.spi.Aggregation;
import io.saeguard.topics.events.Action;
import io.saeguard.topics.events.Alert;
import io.saeguard.topics.events.Decision;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Predicate;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs detectors over chunks of SAE codes and turns their scores into one decision per chunk, plus
 * alerts (docs/architecture.md#detectors). Keeps per-request state in memory (keyed by request id, so it lives on the
 * Kafka partition's owner), bounded by {@link StateLimits}.
 *
 * <p><b>Threading.</b> Not thread-safe. One thread (the sidecar's engine thread) creates the engine and
 * calls every method; the rules it builds rely on that and keep scratch buffers without locks.
 *
 * <p><b>Per chunk</b> ({@link #evaluate}): every detector of the chunk's SAE scores the chunk's counted
 * tokens, aggregates over the request ({@link Aggregation}; each request position counts once per detector, so a
 * redelivered or overlapping chunk adds only the positions not counted before), and maps the score to an action through
 * its {@link Policy}. The chunk's decision is the most severe verdict (block &gt; clamp &gt; steer &gt;
 * flag &gt; allow; ties go to the higher score, then to the detector defined first). When no detector
 * reaches an action above allow, the decision is {@code ALLOW} with no detector, score or features.
 * Otherwise it carries: {@code seq} = the number of chunks of this request evaluated before (0-based,
 * across all SAEs of the request), {@code position} = the chunk's first token position, the deciding
 * detector's id, score and tier, its strongest features (at most 8: SAE, feature id, activation at its
 * strongest token in this chunk), the steering/clamp vector, a short reason (numbers and feature ids
 * only, never request text), and {@code ts} = {@code nowMillis}. {@code latencyMs} is left for the
 * sidecar to fill.
 *
 * <p><b>Vectors.</b> Steer and clamp decisions name a direction of the {@code saeguard.steering}
 * registry by id {@code "<sae>/<feature>"}: the unit-normalised decoder row {@code W_dec[feature] /
 * ‖W_dec[feature]‖} ({@link #steeringVectors()}; docs/architecture.md#the-wire-contract). Steer: {@code VectorRef(id,
 * coefficient)} with the band's coefficient (the applier adds {@code coefficient·v}). Clamp:
 * {@code VectorRef(id, 0, value)} with {@code value = band value × mean activation norm} of the chunk's
 * counted tokens (falling back to the detector's previous chunk, then to all the chunk's tokens), since
 * a fixed clamp constant such as −500 does nothing on models with large residual norms
 * (docs/algorithms.md#steering-and-clamping). DSG clamps every selected feature (docs/algorithms.md#dsg); a decision names only the strongest
 * one's direction.
 *
 * <p><b>Alerts.</b> A detector raises an alert when its score reaches {@code alert_at} and its action
 * is more severe than any it alerted on before in the request: the first time, then only on
 * escalation, so a request whose {@code max} score stays high does not alert on every chunk. The alert
 * carries the detector's own decision (same seq and position), its features with the rule's labels and
 * explanations, the absolute positions of the chunk's tokens that fired (at most 512) and the SAE;
 * model and hook are left empty for the sidecar.
 *
 * <p><b>State lifetime.</b> A request's state is created by its first chunk and released when every
 * SAE that sent it chunks has sent its final chunk ({@link Chunk#isFinal()}), when it is idle for the
 * TTL ({@link #evictExpired}), when the cap evicts it (least recently used first), or by
 * {@link #forgetRequests}. A request seen again after that starts afresh (seq 0).
 *
 * <p><b>Failures, fail mode and deadline</b> (YAML {@code policy.fail}, {@code policy.deadline_ms}). A detector
 * fails on a chunk when it cannot evaluate it: the chunk does not fit it (feature ids outside the SAE, a probe
 * of the wrong width, no activations for a raw probe) or scoring finds non-finite codes or activations; the
 * request's state for that detector may then be partly updated. The other detectors are unaffected. The failed
 * detector's verdict is its fail mode's: {@code open} gives allow, {@code closed} the most severe action among
 * its bands (allow when it has none), with its usual direction for a steer or clamp; the decision then has no
 * score, and its reason names the exception class. A detector misses its deadline when the chunk reaches it
 * more than {@code deadline_ms} after the chunk was produced ({@link #evaluate(Chunk, long, long)}'s
 * {@code ageMillis}): it is still evaluated, so its request state stays whole; {@code closed} then raises its
 * action to at least the most severe band's, {@code open} keeps the verdict as computed (a late verdict is the
 * best one there is; replacing it by allow would hide a detection). Both are reported in
 * {@link Verdict#failure()} and the reason, and failures are logged at WARN at most once a minute per detector.
 * A failed detector raises no alert.
 *
 * <p><b>Shadow detectors</b> ({@code mode: shadow}, {@link DetectorDefinition.Mode}) are evaluated like the others, in
 * definition order, on the same chunks and with their own request state, deadline and fail mode; their verdicts are in
 * {@link ChunkOutcome#verdicts()} marked {@link Verdict#shadow()}, but they never take part in the decision and never
 * raise an alert. Each one whose action is not allow adds its own decision (same seq and position as the chunk's) to
 * {@link ChunkOutcome#shadow()}. The reason "no detector reached a band" speaks of live detectors only.
 */
public final class DetectorEngine {
    private static final Logger LOGGER = LoggerFactory.getLogger(DetectorEngine.class);
    private static final CompiledDetector[] NONE = new CompiledDetector[0];

    private final DecoderDirections directions;
    private final StateLimits limits;
    private final RequestStore store;
    private final EngineInput input = new EngineInput();
    private final List<CompiledDetector> detectors = new ArrayList<>();
    private Map<String, CompiledDetector[]> bySae = Map.of();
    private Map<String, float[]> vectors = Map.of();
    private int nextSlot;
    private int nextGeneration;
    private long revision;
    private long snapshotStatesSkipped;
    private double[] scores = new double[256];

    private DetectorEngine(DecoderDirections directions, StateLimits limits) {
        this.directions = directions;
        this.limits = limits;
        this.store = new RequestStore(limits);
    }

    /**
     * Builds an engine: every rule created, every steering direction read and normalised.
     *
     * @param definitions the detectors, ids unique; evaluated in this order
     * @param directions  decoder rows of the loaded SAEs (only read here and in {@link #withDefinition})
     * @param limits      per-request state bounds
     * @throws IllegalArgumentException naming the detector that cannot run (duplicate id, unreadable
     *     direction, a steer/clamp band without a direction, a raw probe of the wrong width)
     */
    public static DetectorEngine create(List<DetectorDefinition> definitions, DecoderDirections directions, StateLimits limits) {
        Objects.requireNonNull(directions, "directions");
        Objects.requireNonNull(limits, "limits");
        DetectorEngine engine = new DetectorEngine(directions, limits);
        Set<String> ids = new LinkedHashSet<>();
        for (DetectorDefinition d : definitions) {
            if (!ids.add(d.id())) {
                throw new IllegalArgumentException("detector id '" + d.id() + "' is defined twice");
            }
            engine.detectors.add(CompiledDetector.compile(d, directions, engine.nextSlot++, engine.nextGeneration++));
        }
        engine.reindex();
        return engine;
    }

    /** The registry id of the unit decoder direction of {@code feature} of {@code sae}: {@code "<sae>/<feature>"}. */
    public static String vectorId(String sae, int feature) {
        return sae + "/" + feature;
    }

    private void reindex() {
        Map<String, List<CompiledDetector>> grouped = new LinkedHashMap<>();
        Map<String, float[]> v = new TreeMap<>();
        for (CompiledDetector d : detectors) {
            grouped.computeIfAbsent(d.sae, k -> new ArrayList<>()).add(d);
            v.putAll(d.vectors);
        }
        Map<String, CompiledDetector[]> index = new HashMap<>();
        grouped.forEach((sae, list) -> index.put(sae, list.toArray(NONE)));
        bySae = index;
        vectors = v;
        revision++;
    }

    /**
     * Counts changes to the detector set: it grows with every {@link #withDefinition} and effective
     * {@link #withoutDefinition}, so a caller can tell cheaply whether {@link #steeringVectors()} may have changed.
     */
    public long revision() {
        return revision;
    }

    /**
     * Evaluates one chunk and updates its request's state.
     *
     * @param nowMillis the current time, epoch milliseconds (the decisions' {@code ts}, and the request's
     *                  last-seen time for the TTL)
     * @throws IllegalArgumentException if the chunk does not fit a detector of its SAE (see the class doc)
     */
    public ChunkOutcome evaluate(Chunk chunk, long nowMillis) {
        return evaluate(chunk, nowMillis, 0);
    }

    /**
     * Evaluates one chunk that was produced {@code ageMillis} ago, applying each detector's deadline and fail
     * mode (see the class doc).
     *
     * @param nowMillis the current time, epoch milliseconds (the decisions' {@code ts}, and the request's
     *                  last-seen time for the TTL)
     * @param ageMillis how long ago the chunk was produced (its record's timestamp to now), for {@code deadline_ms}
     */
    public ChunkOutcome evaluate(Chunk chunk, long nowMillis, long ageMillis) {
        CompiledDetector[] ds = bySae.getOrDefault(chunk.sae(), NONE);
        RequestState request = store.acquire(chunk.requestId(), nowMillis);
        long seq = request.nextSeq++;
        input.reset(chunk);
        if (scores.length < chunk.tokens()) {
            scores = new double[Math.max(chunk.tokens(), scores.length * 2)];
        }
        List<Verdict> verdicts = new ArrayList<>(ds.length);
        List<Alert> alerts = List.of();
        List<Decision> shadow = List.of();
        CompiledDetector best = null;
        Decision bestDecision = null;
        for (CompiledDetector d : ds) {
            DetectorState st = request.detector(d.slot, d.generation, d.definition.aggregate().window().orElse(0));
            try {
                d.checkChunk(chunk);
                d.evaluate(input, st, scores);
                d.applyDeadline(ageMillis, st);
            } catch (RuntimeException e) {
                d.fail(chunk, st, e);
                logFailure(d, e);
            }
            if (d.definition.shadow()) {
                verdicts.add(new Verdict(d.id, d.score, d.action, d.tier(), false, Optional.ofNullable(d.failure()), true));
                if (d.action != Action.ALLOW) {
                    if (shadow.isEmpty()) {
                        shadow = new ArrayList<>(2);
                    }
                    shadow.add(d.decision(chunk, seq, nowMillis));
                }
                continue;
            }
            boolean alert = d.alertDue(st);
            Decision own = null;
            if (alert) {
                own = d.decision(chunk, seq, nowMillis);
                if (alerts.isEmpty()) {
                    alerts = new ArrayList<>(2);
                }
                alerts.add(Alert.forDecision(own).labels(d::annotate).positions(d.firingPositions(input, scores))
                        .sae(d.sae).build());
                st.alertedLevel = d.action.ordinal();
            }
            verdicts.add(new Verdict(d.id, d.score, d.action, d.tier(), alert, Optional.ofNullable(d.failure())));
            if (d.action != Action.ALLOW && (best == null || d.action.ordinal() > best.action.ordinal()
                    || (d.action == best.action && d.score > best.score))) {
                best = d;
                bestDecision = own;
            }
        }
        Decision decision;
        Optional<Policy.Escalation> escalation = best == null ? Optional.empty() : best.escalation();
        if (best == null) {
            decision = Decision.builder(chunk.requestId(), seq, Action.ALLOW, chunk.position())
                    .reason(ds.length == 0 ? "no detector reads SAE " + chunk.sae() : "no detector reached a band")
                    .ts(nowMillis).build();
        } else {
            decision = bestDecision != null ? bestDecision : best.decision(chunk, seq, nowMillis);
        }
        if (request.recordChunk(chunk.sae(), chunk.isFinal())) {
            store.remove(chunk.requestId());
        }
        return new ChunkOutcome(decision, alerts, verdicts, shadow, escalation);
    }

    /**
     * Takes the request's next decision seq for a decision made outside {@link #evaluate} (a judge's verdict, a judge
     * fallback: docs/architecture.md#judge-cascade), so the request's later chunks number after it. Empty when the
     * engine holds no state for the request (it finished or was evicted); the caller then numbers on from what it saw.
     */
    public OptionalLong takeSeq(String requestId) {
        RequestState request = store.peek(requestId);
        return request == null ? OptionalLong.empty() : OptionalLong.of(request.nextSeq++);
    }

    private static final long FAILURE_LOG_INTERVAL_MS = 60_000;
    private final Map<String, long[]> failureLog = new HashMap<>(); // detector id -> {last logged ms, not logged since}

    /** Logs a detector's failure at WARN, at most once a minute per detector (with the count not logged since). */
    private void logFailure(CompiledDetector d, RuntimeException e) {
        long now = System.currentTimeMillis();
        long[] log = failureLog.computeIfAbsent(d.id, k -> new long[] {Long.MIN_VALUE / 2, 0});
        if (now - log[0] < FAILURE_LOG_INTERVAL_MS) {
            log[1]++;
            return;
        }
        LOGGER.atWarn().addKeyValue("detector", d.id).addKeyValue("fail", d.definition.policy().fail().name().toLowerCase(java.util.Locale.ROOT))
                .addKeyValue("failures_not_logged", log[1]).log("detector failed on a chunk: {}", e.toString());
        log[0] = now;
        log[1] = 0;
    }

    /** The SAE ids some detector reads. */
    public Set<String> saes() {
        return Collections.unmodifiableSet(new TreeSet<>(bySae.keySet()));
    }

    /** Whether some detector of this SAE reads raw activations (raw-probe), so chunks must carry them. */
    public boolean needsActivations(String sae) {
        for (CompiledDetector d : bySae.getOrDefault(sae, NONE)) {
            if (d.rule.needsActivations()) {
                return true;
            }
        }
        return false;
    }

    /**
     * Per SAE, the features its detectors read or name: every feature whose code can change a rule's score
     * ({@link io.saeguard.detectors.spi.TokenRule#readFeatures()}: rule features, DSG's selected features, a probe's
     * non-zero weights) and each {@code vector_feature}. A chunk's codes need hold only these features
     * (docs/algorithms.md#watched-feature-encode); they are also the per-feature metrics' watched set.
     */
    public Map<String, Set<Integer>> watchedFeatures() {
        Map<String, Set<Integer>> out = new TreeMap<>();
        for (CompiledDetector d : detectors) {
            Set<Integer> s = out.computeIfAbsent(d.sae, k -> new TreeSet<>());
            for (int f : d.rule.readFeatures()) {
                s.add(f);
            }
            for (int f : d.rule.namedFeatures()) {
                s.add(f);
            }
            d.definition.policy().vectorFeature().ifPresent(s::add);
        }
        out.replaceAll((k, s) -> Collections.unmodifiableSet(s));
        return Collections.unmodifiableMap(out);
    }

    /**
     * Per SAE, the human-readable label of each named feature that has one (the first detector
     * naming it wins), for the live page and dashboards.
     */
    public Map<String, Map<Integer, String>> featureLabels() {
        Map<String, Map<Integer, String>> out = new TreeMap<>();
        for (CompiledDetector d : detectors) {
            Map<Integer, String> labels = out.computeIfAbsent(d.sae, k -> new TreeMap<>());
            for (int f : d.rule.namedFeatures()) {
                d.rule.label(f).ifPresent(l -> labels.putIfAbsent(f, l));
            }
        }
        out.replaceAll((k, m) -> Collections.unmodifiableMap(m));
        return Collections.unmodifiableMap(out);
    }

    /**
     * Every direction a steer or clamp decision of these detectors may name: vector id
     * {@code "<sae>/<feature>"} to the unit-normalised decoder row (length {@code d_in}), for the
     * compacted {@code saeguard.steering} topic. The arrays are copies.
     */
    public Map<String, float[]> steeringVectors() {
        Map<String, float[]> out = new TreeMap<>();
        vectors.forEach((k, v) -> out.put(k, v.clone()));
        return Collections.unmodifiableMap(out);
    }

    /**
     * The request's state as data, or empty when none is held (it never came, finished, expired or was evicted). Call it
     * after {@link #evaluate} to write the state beside the chunk's decision (docs/architecture.md#request-state); only
     * detectors of the current definitions with state for the request are in it.
     */
    public Optional<RequestSnapshot> snapshot(String requestId) {
        RequestState s = store.peek(requestId);
        if (s == null) {
            return Optional.empty();
        }
        List<RequestSnapshot.DetectorSnapshot> states = new ArrayList<>(detectors.size());
        for (CompiledDetector d : detectors) {
            DetectorState st = s.existing(d.slot, d.generation);
            if (st != null) {
                states.add(st.snapshot(d.id, d.fingerprint));
            }
        }
        return Optional.of(new RequestSnapshot(requestId, s.nextSeq, s.lastSeenMillis, s.saeProgress(), states));
    }

    /**
     * Holds the snapshot's state for its request, replacing any held now, as if this engine had evaluated the chunks
     * the snapshot was taken after. A detector's state is restored only when a detector of that id exists and its
     * definition has the snapshot's fingerprint; otherwise that detector starts afresh for the request (as after a
     * replacement) and the state is counted in {@link #snapshotStatesSkipped()}. A request whose every SAE had sent
     * its final chunk is not held (its state was already released).
     *
     * @throws IllegalArgumentException when the snapshot's counted positions are not well formed (a corrupted
     *     snapshot); nothing is held then
     */
    public void restore(RequestSnapshot snapshot) {
        RequestState s = new RequestState(snapshot.requestId());
        s.nextSeq = snapshot.nextSeq();
        s.lastSeenMillis = snapshot.lastSeenMillis();
        boolean done = false;
        for (RequestSnapshot.SaeProgress p : snapshot.saes()) {
            done = s.recordChunk(p.sae(), p.finished());
        }
        for (RequestSnapshot.DetectorSnapshot ds : snapshot.detectors()) {
            int at = indexOf(ds.detector());
            CompiledDetector d = at >= 0 ? detectors.get(at) : null;
            if (d == null || d.fingerprint != ds.fingerprint() || ds.ring().length != d.definition.aggregate().window().orElse(0)) {
                snapshotStatesSkipped++;
                continue;
            }
            s.put(d.slot, new DetectorState(d.generation, ds));
        }
        if (done) {
            store.remove(snapshot.requestId());
        } else {
            store.put(s);
        }
    }

    /** Detector states of restored snapshots that were not restored (their detector is gone or was redefined). */
    public long snapshotStatesSkipped() {
        return snapshotStatesSkipped;
    }

    /**
     * A fingerprint of a definition: the first 8 bytes of the SHA-256 of its YAML ({@link DetectorDefinitions#toYaml}).
     * Two definitions that read alike have the same one; any change to the rule, aggregation, special tokens or
     * policy changes it.
     */
    public static long fingerprint(DetectorDefinition d) {
        try {
            byte[] h = java.security.MessageDigest.getInstance("SHA-256")
                    .digest(DetectorDefinitions.toYaml(d).getBytes(java.nio.charset.StandardCharsets.UTF_8));
            return java.nio.ByteBuffer.wrap(h).getLong();
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM", e); // every JVM must have it
        }
    }

    /** Drops the state of every request the predicate accepts (partitions revoked); returns how many. */
    public int forgetRequests(Predicate<String> requestId) {
        return store.forget(requestId);
    }

    /** Drops requests idle for at least the TTL as of {@code nowMillis}; returns how many. */
    public int evictExpired(long nowMillis) {
        return store.evictExpired(nowMillis);
    }

    /** Requests with state held now. */
    public int activeRequests() {
        return store.size();
    }

    /** Requests evicted so far because the cap was reached (least recently used first). */
    public long capEvictions() {
        return store.capEvictions();
    }

    /** Requests evicted so far by the TTL. */
    public long ttlEvictions() {
        return store.ttlEvictions();
    }

    /** The limits this engine was built with. */
    public StateLimits limits() {
        return limits;
    }

    /**
     * Hot reload of one detector: replaces the detector with the same id, or adds it after the others.
     * <b>Mutates this engine in place and returns it</b>, so both {@code engine.withDefinition(d)} and
     * {@code engine = engine.withDefinition(d)} work. Request state is kept: the other detectors' state
     * is untouched; the replaced detector's per-request state starts afresh, since its rule, window or
     * bands may mean something else now. Steering vectors are recomputed (publish
     * {@link #steeringVectors()} again).
     *
     * @throws IllegalArgumentException if the replacement cannot run (see {@link #create}); the engine
     *     is then unchanged and keeps the old version
     */
    public DetectorEngine withDefinition(DetectorDefinition replacement) {
        Objects.requireNonNull(replacement, "replacement");
        int at = indexOf(replacement.id());
        int slot = at >= 0 ? detectors.get(at).slot : nextSlot;
        CompiledDetector compiled = CompiledDetector.compile(replacement, directions, slot, nextGeneration);
        nextGeneration++;
        if (at >= 0) {
            detectors.set(at, compiled);
        } else {
            detectors.add(compiled);
            nextSlot++;
        }
        reindex();
        LOGGER.atInfo().addKeyValue("detector", replacement.id()).addKeyValue("sae", replacement.sae())
                .addKeyValue("kind", replacement.rule().kind()).log(at >= 0 ? "detector replaced" : "detector added");
        return this;
    }

    /** Removes a detector (in place, returning this engine); its request state is dropped lazily. No-op for an unknown id. */
    public DetectorEngine withoutDefinition(String id) {
        int at = indexOf(id);
        if (at >= 0) {
            detectors.remove(at);
            reindex();
            LOGGER.atInfo().addKeyValue("detector", id).log("detector removed");
        }
        return this;
    }

    private int indexOf(String id) {
        for (int i = 0; i < detectors.size(); i++) {
            if (detectors.get(i).id.equals(id)) {
                return i;
            }
        }
        return -1;
    }

    /** The definitions in evaluation order. */
    public List<DetectorDefinition> definitions() {
        return detectors.stream().map(d -> d.definition).toList();
    }

    /** The definition with this id, if any. */
    public Optional<DetectorDefinition> definition(String id) {
        int at = indexOf(id);
        return at >= 0 ? Optional.of(detectors.get(at).definition) : Optional.empty();
    }
}
