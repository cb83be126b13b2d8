package io.saeguard.sidecar.pipeline;

import io.saeguard.detectors.DetectorDefinition;
import io.saeguard.detectors.DetectorDefinitions;
import io.saeguard.detectors.spi.DetectorConfigException;
import io.saeguard.sidecar.kafka.TopicFollower;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.utils.Time;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The detector registry: the compacted detectors topic (key = detector id, value = its YAML, tombstone = removed) that
 * every replica applies in order, so replicas converge and changes survive restarts (issue 19).
 *
 * <p><b>Writing</b> ({@link #publish}, any thread): the HTTP API and the detector file watcher publish here instead of
 * changing the engine; every record carries {@link #WHO} (the token's name, or {@code file:<path>}), {@link #WHEN}
 * (epoch ms) and {@link #CHANGE} (a random id by which the publisher learns that this replica applied its record).
 *
 * <p><b>Reading</b> (its own thread, {@code saeguard-detector-registry}, a {@link TopicFollower}, which alone uses the
 * consumer): the consumer is assigned every partition of the topic, without a group, and reads from the beginning. Each record goes to the
 * engine ({@link Target}) and is waited for before the next, so changes apply in the log's order. A record this
 * replica cannot run (it no longer parses, or names an SAE or feature this replica lacks) is logged and skipped; the
 * running version of that detector stays in force. {@link #caughtUp} turns true once the records up to the end
 * offsets seen at {@link #start} are applied; the pipeline polls no input before that.
 *
 * <p><b>Files</b>: {@link #seed} publishes a configured file's definition only if the topic has never held that id (a
 * tombstone counts as held: a removed detector stays removed), so once written the topic wins over files.
 */
public final class DetectorRegistry implements AutoCloseable {
    private static final Logger LOGGER = LoggerFactory.getLogger(DetectorRegistry.class);
    /** Header: who made the change, the token's name or {@code file:<absolute path>}. */
    public static final String WHO = "saeguard.who";
    /** Header: when the change was published, epoch milliseconds in decimal. */
    public static final String WHEN = "saeguard.when";
    /** Header: a random id of the change, by which {@link #publish} recognises its own record. */
    public static final String CHANGE = "saeguard.change";
    private static final String FILE_PREFIX = "file:";
    /** How long applying one record on the engine may take (it waits behind queued batches). */
    private static final Duration ENGINE_TIMEOUT = Duration.ofSeconds(60);

    /** Where records are applied: the engine thread's detector-replacement tasks. */
    interface Target {
        /** Replaces or adds; completes with whether the id existed, exceptionally with {@link InvalidRequestException} when refused. */
        CompletableFuture<Boolean> replace(DetectorDefinition definition);

        /** Removes; completes with whether the id existed. */
        CompletableFuture<Boolean> remove(String id);
    }

    private final String topic;
    private final Producer<String, byte[]> producer;
    private final TopicFollower follower;
    private final Target target;
    private final Duration applyTimeout;
    private final Time time;
    /** Calls {@code send}, which can block on metadata or a full buffer, so that {@link #publish} never does. */
    private final ExecutorService sender = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "saeguard-detector-publish");
        t.setDaemon(true);
        return t;
    });
    private final CountDownLatch caughtUpLatch = new CountDownLatch(1);
    private final Map<String, CompletableFuture<Boolean>> waiting = new ConcurrentHashMap<>();
    /** Every id the topic has held, with its latest value (empty after a tombstone); written by the registry thread. */
    private final Map<String, Optional<byte[]>> written = new ConcurrentHashMap<>();
    private volatile boolean caughtUp;
    private volatile Throwable failure;

    /**
     * @param applyTimeout how long {@link #publish} waits for this replica to apply its own record
     */
    DetectorRegistry(String topic, Producer<String, byte[]> producer, Consumer<String, byte[]> consumer, Target target,
            Duration applyTimeout, Time time) {
        this.topic = topic;
        this.producer = producer;
        this.target = target;
        this.applyTimeout = applyTimeout;
        this.time = time;
        this.follower = new TopicFollower("saeguard-detector-registry", "detector registry", topic, consumer, this::apply,
                new TopicFollower.Listener() {
                    @Override
                    public void caughtUp() {
                        caughtUp = true;
                        caughtUpLatch.countDown();
                        LOGGER.atInfo().addKeyValue("topic", topic).addKeyValue("detectors", written.values().stream().filter(Optional::isPresent)
                                .count()).log("detector registry read to its end");
                    }

                    @Override
                    public void failed(Throwable e) {
                        failure = e;
                        caughtUpLatch.countDown();
                    }
                });
    }

    /**
     * Assigns every partition of the topic from the beginning, notes their end offsets and starts the registry thread.
     *
     * @throws IllegalStateException when the topic does not exist, naming it and how to create it
     */
    void start(Duration timeout) {
        follower.startFromBeginning(timeout, "the detector registry topic '" + topic + "' does not exist: create it with `saeguard topics "
                + "create` (topics.yaml role 'detectors'), or name an existing one under topics.detectors");
    }

    /** Waits until the records up to the end offsets seen at start are applied; false on timeout. */
    boolean awaitCaughtUp(Duration timeout) throws InterruptedException {
        boolean done = caughtUpLatch.await(timeout.toMillis(), TimeUnit.MILLISECONDS);
        if (failure != null) {
            throw new IllegalStateException("the detector registry stopped reading '" + topic + "': " + failure, failure);
        }
        return done;
    }

    /** Whether this replica applied the topic up to the end offsets it saw at start, and still reads it. */
    public boolean caughtUp() {
        return caughtUp && follower.running();
    }

    /** The registry topic's name. */
    public String topic() {
        return topic;
    }

    /** Whether the topic holds a definition for {@code id} now (not removed). */
    public boolean holds(String id) {
        return written.getOrDefault(id, Optional.empty()).isPresent();
    }

    /**
     * Publishes a detector change and completes once this replica applied it (never blocks: the send runs on this
     * registry's own thread, in call order): with whether the id existed here before
     * (replaced or added; removed or unknown). Completes exceptionally with {@link InvalidRequestException} if this
     * replica refused the definition (validate first: {@link EngineLoop#validate}), or with
     * {@link RegistryUnavailableException} if Kafka did not take the record or it was not applied in time.
     *
     * @param yaml the definition as written, or empty to remove the detector (a tombstone)
     * @param who  the token's name, or {@code file:<path>}; relative file references resolve against a file's directory
     */
    public CompletableFuture<Boolean> publish(String id, Optional<byte[]> yaml, String who) {
        String change = UUID.randomUUID().toString();
        CompletableFuture<Boolean> applied = new CompletableFuture<>();
        waiting.put(change, applied);
        ProducerRecord<String, byte[]> record = new ProducerRecord<>(topic, id, yaml.orElse(null));
        record.headers().add(WHO, who.getBytes(StandardCharsets.UTF_8))
                .add(WHEN, Long.toString(time.milliseconds()).getBytes(StandardCharsets.UTF_8))
                .add(CHANGE, change.getBytes(StandardCharsets.UTF_8));
        sender.execute(() -> {
            try {
                producer.send(record, (metadata, err) -> {
                    if (err != null) {
                        applied.completeExceptionally(new RegistryUnavailableException("the detector change was not written to '" + topic
                                + "': " + err.getMessage(), err));
                    }
                });
            } catch (RuntimeException e) {
                applied.completeExceptionally(new RegistryUnavailableException("the detector change was not written to '" + topic + "': "
                        + e.getMessage(), e));
            }
        });
        return applied.orTimeout(applyTimeout.toMillis(), TimeUnit.MILLISECONDS).handle((existed, err) -> {
            waiting.remove(change);
            if (err == null) {
                return existed;
            }
            Throwable cause = err instanceof java.util.concurrent.CompletionException && err.getCause() != null ? err.getCause() : err;
            if (cause instanceof TimeoutException) {
                throw new RegistryUnavailableException("the detector change was published to '" + topic + "' but this replica did not "
                        + "apply it within " + applyTimeout.toMillis() + " ms; it applies it when it gets there", cause);
            }
            throw cause instanceof RuntimeException r ? r : new RegistryUnavailableException(cause.toString(), cause);
        });
    }

    /**
     * Publishes a configured detector file's definition if the topic has never held its id, after catching up; waits
     * for Kafka's acknowledgement, not for the change to apply (the engine started with the file's version).
     *
     * @return whether it was published
     */
    boolean seed(Path file, String id, byte[] yaml) {
        if (written.containsKey(id)) {
            LOGGER.atInfo().addKeyValue("detector", id).addKeyValue("file", file).addKeyValue("topic", topic)
                    .log("the registry topic already holds this detector; it wins over the file");
            return false;
        }
        ProducerRecord<String, byte[]> record = new ProducerRecord<>(topic, id, yaml);
        record.headers().add(WHO, (FILE_PREFIX + file.toAbsolutePath().normalize()).getBytes(StandardCharsets.UTF_8))
                .add(WHEN, Long.toString(time.milliseconds()).getBytes(StandardCharsets.UTF_8));
        try {
            producer.send(record).get(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        } catch (ExecutionException | TimeoutException e) {
            LOGGER.atError().addKeyValue("detector", id).addKeyValue("file", file).addKeyValue("topic", topic)
                    .log("could not seed the registry topic from the file; this replica runs the file's version: {}", e.toString());
            return false;
        }
        LOGGER.atInfo().addKeyValue("detector", id).addKeyValue("file", file).addKeyValue("topic", topic).log("registry seeded from file");
        return true;
    }

    /** The topic's current YAML for {@code id}, when it holds one. */
    Optional<byte[]> current(String id) {
        return written.getOrDefault(id, Optional.empty());
    }

    /** Whether the topic's current value for {@code id} is exactly {@code yaml}. */
    boolean holdsExactly(String id, byte[] yaml) {
        return current(id).map(v -> Arrays.equals(v, yaml)).orElse(false);
    }

    /** Applies one record on the engine and waits for it, so the next one applies after it. */
    private void apply(ConsumerRecord<String, byte[]> r) throws InterruptedException {
        String id = r.key();
        String who = header(r, WHO).orElse("unknown");
        Optional<CompletableFuture<Boolean>> waiter = header(r, CHANGE).map(waiting::get);
        String at = "topic " + r.topic() + " partition " + r.partition() + " offset " + r.offset();
        if (id == null) {
            LOGGER.atWarn().addKeyValue("offset", r.offset()).addKeyValue("who", who).log("registry record without a key skipped");
            return;
        }
        CompletableFuture<Boolean> done;
        if (r.value() == null) {
            written.put(id, Optional.empty());
            done = target.remove(id);
        } else {
            written.put(id, Optional.of(r.value()));
            DetectorDefinition def;
            try {
                def = DetectorDefinitions.parse(r.value(), at + " (detector '" + id + "', from " + who + ")", baseDir(who));
                if (!def.id().equals(id)) {
                    throw new InvalidRequestException(at + ": the definition's id '" + def.id() + "' differs from the record key '" + id + "'");
                }
            } catch (DetectorConfigException | InvalidRequestException e) {
                skipped(id, who, r.offset(), e.getMessage());
                waiter.ifPresent(w -> w.completeExceptionally(e instanceof InvalidRequestException ? e
                        : new InvalidRequestException(e.getMessage(), e)));
                return;
            }
            done = target.replace(def);
        }
        try {
            boolean existed = done.get(ENGINE_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
            LOGGER.atInfo().addKeyValue("detector", id).addKeyValue("who", who).addKeyValue("when", header(r, WHEN).orElse("-"))
                    .addKeyValue("offset", r.offset())
                    .log(r.value() == null ? (existed ? "detector removed" : "detector removal: not running here") : existed ? "detector replaced"
                            : "detector added");
            waiter.ifPresent(w -> w.complete(existed));
        } catch (ExecutionException e) {
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            if (cause instanceof InvalidRequestException) {
                skipped(id, who, r.offset(), cause.getMessage());
            } else {
                LOGGER.atError().addKeyValue("detector", id).addKeyValue("who", who).addKeyValue("offset", r.offset())
                        .log("detector change applied with an error: {}", cause.getMessage());
            }
            waiter.ifPresent(w -> w.completeExceptionally(cause));
        } catch (TimeoutException e) {
            LOGGER.atError().addKeyValue("detector", id).addKeyValue("offset", r.offset())
                    .log("the engine did not apply the detector change within {}; reading on", ENGINE_TIMEOUT);
            waiter.ifPresent(w -> done.whenComplete((existed, err) -> {
                if (err != null) {
                    w.completeExceptionally(err);
                } else {
                    w.complete(existed);
                }
            }));
        }
    }

    private static void skipped(String id, String who, long offset, String why) {
        LOGGER.atWarn().addKeyValue("detector", id).addKeyValue("who", who).addKeyValue("offset", offset)
                .log("registry record skipped: this replica cannot run it, the running version stays in force: {}", why);
    }

    /** Relative references (probe weights) resolve against a file's directory when the change came from a file. */
    private static Path baseDir(String who) {
        if (who.startsWith(FILE_PREFIX)) {
            Path parent = Path.of(who.substring(FILE_PREFIX.length())).getParent();
            if (parent != null) {
                return parent;
            }
        }
        return Path.of("");
    }

    private static Optional<String> header(ConsumerRecord<String, byte[]> r, String name) {
        Header h = r.headers().lastHeader(name);
        return h == null || h.value() == null ? Optional.empty() : Optional.of(new String(h.value(), StandardCharsets.UTF_8));
    }

    /** Stops reading and closes the consumer and the producer; changes still waiting complete exceptionally. */
    @Override
    public void close() {
        follower.close();
        sender.shutdown();
        producer.close(Duration.ofSeconds(10));
        waiting.values().forEach(w -> w.completeExceptionally(new RegistryUnavailableException("the sidecar is shutting down", null)));
    }
}
