package io.saeguard.sidecar.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.saeguard.sidecar.config.SidecarConfig;
import io.saeguard.sidecar.metrics.Metrics;
import io.saeguard.topics.activation.ActivationCodec;
import io.saeguard.topics.events.EventCodec;
import io.saeguard.topics.events.PromptEvent;
import io.saeguard.topics.events.Phase;
import io.saeguard.topics.safetensors.DType;
import io.saeguard.topics.safetensors.HalfFloats;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.MockConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.MockProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;

/**
 * The poll loop's logic without a broker (as Kafka Connect's {@code WorkerSinkTaskTest}): a
 * {@link MockConsumer} for the group, a {@link MockProducer} behind the output sink, a
 * {@link ManualTime} for every interval and backoff, and a {@link RecordingEngine} in place of the
 * engine thread. Each test drives the loop one {@link PollLoop#pollOnce} at a time. The broker ITs
 * (PipelineIT, FaultsIT, BackpressureIT) stay the end-to-end truth.
 */
class PollLoopTest {
    private static final String TOPIC = "activations";
    private static final String DEADLETTERS = "deadletters";
    private static final TopicPartition P0 = new TopicPartition(TOPIC, 0);
    private static final TopicPartition P1 = new TopicPartition(TOPIC, 1);
    private static final String VERDICTS = "judge-verdicts";
    private static final TopicPartition V0 = new TopicPartition(VERDICTS, 0);
    private static final int D_IN = 4;
    private static final int TOKENS = 2;
    /** Pause above 8 tokens in flight (more than 4 records), resume at 4 (2 records) or fewer. */
    private static final SidecarConfig.Batching BATCHING = new SidecarConfig.Batching(64, Duration.ofMillis(5), 8, 4, 16);
    private static final long COMMIT_INTERVAL_MS = 200;
    private static final int DECISION_PARTITIONS = 12;

    /** Synchronous commits, in order (a MockConsumer reports no committed offset for a partition it no longer holds). */
    private final List<Map<TopicPartition, OffsetAndMetadata>> syncCommits = new ArrayList<>();
    private final MockConsumer<String, byte[]> consumer = new MockConsumer<>("earliest") {
        @Override
        public synchronized void commitSync(Map<TopicPartition, OffsetAndMetadata> offsets) {
            syncCommits.add(Map.copyOf(offsets));
            super.commitSync(offsets);
        }
    };
    private final MockProducer<String, byte[]> producer = new MockProducer<>(false, null, new StringSerializer(), new ByteArraySerializer());
    private final ManualTime time = new ManualTime(1_000);
    private final RecordingEngine engine = new RecordingEngine();
    private final Generation generation = new Generation();
    private final Metrics metrics = new Metrics(new PrometheusRegistry());
    private PollLoop loop;
    private SidecarConfig.Batching batching = BATCHING;

    private PollLoop start(OutputSink sink, TopicPartition... assigned) {
        return start(sink, Optional.empty(), assigned);
    }

    private PollLoop start(OutputSink sink, Optional<RequestStateLog> state, TopicPartition... assigned) {
        SaeRouter router = new SaeRouter(List.of(new SidecarConfig.SaeEntry("sae", Path.of("unused"), Optional.empty(), Optional.empty(), 32)));
        DeadLetterPublisher deadLetters = new DeadLetterPublisher(sink, DEADLETTERS, metrics);
        loop = new PollLoop(consumer, List.of(TOPIC), batching, router, Map.of("sae", D_IN), engine, deadLetters, sink, generation, metrics,
                Optional.empty(), Optional.empty(), new ReplyPartitions("decisions", () -> DECISION_PARTITIONS, time), Optional.of(VERDICTS),
                state, time);
        loop.subscribe();
        consumer.updateBeginningOffsets(Map.of(P0, 0L, P1, 0L, V0, 0L));
        consumer.rebalance(List.of(assigned));
        return loop;
    }

    private PollLoop startDirect(TopicPartition... assigned) {
        return start(new DirectSink(producer, a -> loop.ack(a), generation), assigned);
    }

    private static byte[] activations(String requestId, long position) {
        float[] rows = new float[TOKENS * D_IN];
        for (int i = 0; i < rows.length; i++) {
            rows[i] = position + i / 10f;
        }
        return ActivationCodec.builder(requestId).position(position).phase(Phase.PROMPT).isFinal(false)
                .activations(DType.F32, TOKENS, D_IN, rows).encode();
    }

    private void add(TopicPartition tp, long offset) {
        consumer.addRecord(new ConsumerRecord<>(tp.topic(), tp.partition(), offset, "req-" + tp.partition(), activations("req-" + tp.partition(), offset * TOKENS)));
    }

    /** P0 and P1 assigned, 5 records of 2 tokens handed over from P0 (10 > max_inflight_tokens 8), and the loop paused. */
    private void pausedWithTenTokensInFlight() {
        startDirect(P0, P1);
        for (long o = 0; o < 5; o++) {
            add(P0, o);
        }
        loop.pollOnce();
        loop.pollOnce();
        assertThat(consumer.paused()).hasSize(2);
    }

    private void ack(TopicPartition tp, long offset) {
        Work w = engine.submitted.stream().filter(s -> s.partition().equals(tp) && s.record().offset() == offset).reduce((a, b) -> b).orElseThrow();
        loop.ack(w.source());
    }

    private long committed(TopicPartition tp) {
        OffsetAndMetadata c = consumer.committed(Set.of(tp)).get(tp);
        return c == null ? -1 : c.offset();
    }

    private static String header(ProducerRecord<String, byte[]> r, String key) {
        Header h = r.headers().lastHeader(DeadLetterPublisher.PREFIX + key);
        return h == null ? null : new String(h.value(), StandardCharsets.UTF_8);
    }

    @Test
    void anAssignedPartitionsRequestStateReachesTheEngineBeforeItsFirstRecord() {
        // Given the group committed offset 1 of P0, and the state topic holds req-0's state after offset 0
        MockConsumer<String, byte[]> stateReader = new MockConsumer<>("earliest");
        TopicPartition state0 = new TopicPartition("state", 0);
        RequestStateLog.Target target = new RequestStateLog.Target("state", "group");
        stateReader.updateBeginningOffsets(Map.of(state0, 0L));
        stateReader.updateEndOffsets(Map.of(state0, 0L));
        start(new DirectSink(producer, a -> loop.ack(a), generation),
                Optional.of(new RequestStateLog(target, stateReader, metrics, Duration.ofSeconds(5), time)), P0);
        consumer.commitSync(Map.of(P0, new OffsetAndMetadata(1)));
        consumer.rebalance(List.of());
        engine.events.clear();
        stateReader.updateEndOffsets(Map.of(state0, 1L));
        stateReader.schedulePollTask(() -> {
            ProducerRecord<String, byte[]> p = RequestStateLog.record(target, new ConsumerRecord<>(TOPIC, 0, 0, "req-0", new byte[0]), "req-0",
                    Optional.of(io.saeguard.detectors.RequestSnapshotCodec.encode(
                            new io.saeguard.detectors.RequestSnapshot("req-0", 1, 0, List.of(), List.of()))));
            stateReader.addRecord(new ConsumerRecord<>("state", 0, 0, 0L, org.apache.kafka.common.record.TimestampType.CREATE_TIME, -1, -1,
                    p.key(), p.value(), new org.apache.kafka.common.header.internals.RecordHeaders(p.headers().toArray()), Optional.empty()));
        });

        // When P0 is assigned again (resuming at the committed offset 1) and its record at offset 1 polled
        consumer.rebalance(List.of(P0));
        add(P0, 1);
        loop.pollOnce();

        // Then
        assertThat(engine.events).containsExactly("restore " + P0 + ":1", "submit " + P0 + "@1");
        assertThat(metrics.stateRestored.get()).isEqualTo(1.0);
    }

    @Test
    void recordsAreDecodedAndHandedToTheEngineInOffsetOrder() {
        // Given
        startDirect(P0);
        for (long o = 0; o < 3; o++) {
            add(P0, o);
        }

        // When
        loop.pollOnce();

        // Then
        assertThat(engine.handed()).containsExactly("0@0/g0", "0@1/g0", "0@2/g0");
        Work second = engine.submitted.get(1);
        assertThat(second.sae()).isEqualTo("sae");
        assertThat(second.requestId()).isEqualTo("req-0");
        assertThat(second.position()).isEqualTo(2);
        assertThat(second.x().toArray()).containsExactly(2f, 2.1f, 2.2f, 2.3f, 2.4f, 2.5f, 2.6f, 2.7f);
        assertThat(metrics.inflightTokens.get()).isEqualTo(3 * TOKENS);
    }

    @Test
    void aPollThatHandedRecordsOverEndsWithOnePollEndAfterItsLastRecord() {
        // Given a poll of three records, then an empty poll, then a poll whose only record is dead-lettered
        startDirect(P0);
        for (long o = 0; o < 3; o++) {
            add(P0, o);
        }

        // When
        loop.pollOnce();
        loop.pollOnce();
        consumer.addRecord(new ConsumerRecord<>(TOPIC, 0, 3, "req-0", "garbage".getBytes(StandardCharsets.UTF_8)));
        loop.pollOnce();

        // Then the engine heard of the end of the first poll only, after its three records
        assertThat(engine.pollEnds).containsExactly(3);
        assertThat(producer.history()).hasSize(1);
    }

    @Test
    void onSeveralDecodeThreadsRecordsKeepTheirPartitionsOrderAndBadOnesAreDeadLettered() {
        // Given four decode threads, room for every record, and 60 records over two partitions with a bad one every 7th
        batching = new SidecarConfig.Batching(64, Duration.ofMillis(5), 10_000, 5_000, 16, 4, true);
        startDirect(P0, P1);
        List<String> expected = new ArrayList<>();
        for (long o = 0; o < 30; o++) {
            for (TopicPartition tp : List.of(P0, P1)) {
                if ((o + tp.partition()) % 7 == 3) {
                    consumer.addRecord(new ConsumerRecord<>(TOPIC, tp.partition(), o, "req-" + tp.partition(), "garbage".getBytes(StandardCharsets.UTF_8)));
                } else {
                    add(tp, o);
                    expected.add(tp.partition() + "@" + o + "/g0");
                }
            }
        }

        // When one poll takes them all
        loop.pollOnce();

        // Then the engine got the good ones in offset order per partition, and each bad one went to the dead-letter topic
        assertThat(engine.handed()).hasSameSizeAs(expected);
        for (String p : List.of("0@", "1@")) {
            assertThat(engine.handed().stream().filter(h -> h.startsWith(p)).toList())
                    .containsExactlyElementsOf(expected.stream().filter(h -> h.startsWith(p)).toList());
        }
        assertThat(producer.history()).hasSize(60 - expected.size())
                .allSatisfy(r -> assertThat(r.topic()).isEqualTo(DEADLETTERS));
        assertThat(Thread.getAllStackTraces().keySet()).anyMatch(t -> t.getName().startsWith("saeguard-decode-"));
    }

    @Test
    void aBf16RecordStaysInItsBytesUntilTheEngineWidensIt() {
        // Given a BF16 record
        startDirect(P0);
        float[] rows = {1.5f, -2.25f, 3.0078125f, 0.1f, 4f, 5f, 6f, 7f};
        consumer.addRecord(new ConsumerRecord<>(TOPIC, 0, 0, "req-0", ActivationCodec.builder("req-0").position(0).isFinal(true)
                .activations(DType.BF16, TOKENS, D_IN, rows).encode()));

        // When it is polled
        loop.pollOnce();

        // Then its Work reads the record's bytes (no F32 copy made), widens them into a batch buffer, and carries their norms
        Work w = engine.submitted.get(0);
        assertThat(w.x()).isInstanceOf(Activations.InRecord.class);
        float[] batch = new float[3 + rows.length];
        w.x().copyTo(batch, 3);
        float[] widened = new float[rows.length];
        for (int i = 0; i < rows.length; i++) {
            widened[i] = HalfFloats.bf16ToFloat(HalfFloats.floatToBf16(rows[i]));
        }
        assertThat(java.util.Arrays.copyOfRange(batch, 3, batch.length)).containsExactly(widened);
        assertThat(w.norms()).containsExactly(TokenNorms.of(widened, TOKENS, D_IN));
    }

    @Test
    void aNonFiniteBf16ValueIsDeadLetteredNamingItsTokenAndDimension() {
        // Given a BF16 record with an infinity at token 1, dimension 2
        startDirect(P0);
        float[] rows = {1, 2, 3, 4, 5, 6, Float.POSITIVE_INFINITY, 8};
        consumer.addRecord(new ConsumerRecord<>(TOPIC, 0, 0, "req-0", ActivationCodec.builder("req-0").position(10).isFinal(true)
                .activations(DType.BF16, TOKENS, D_IN, rows).encode()));

        // When it is polled
        loop.pollOnce();

        // Then it is dead-lettered with where the value is
        assertThat(engine.submitted).isEmpty();
        assertThat(producer.history()).singleElement().satisfies(r -> assertThat(header(r, "message"))
                .contains("token 1 (position 11) has a non-finite value (Infinity) at dimension 2"));
    }

    @Test
    void aMalformedRecordIsDeadLetteredWithItsReasonAndTheLoopGoesOn() {
        // Given a good record, bytes that are no activation record, and a good record
        startDirect(P0);
        add(P0, 0);
        consumer.addRecord(new ConsumerRecord<>(TOPIC, 0, 1, "req-0", "not a safetensors record".getBytes(StandardCharsets.UTF_8)));
        add(P0, 2);

        // When
        loop.pollOnce();

        // Then the bad one is dead-lettered with why and where, the good ones go to the engine
        assertThat(engine.handed()).containsExactly("0@0/g0", "0@2/g0");
        assertThat(producer.history()).hasSize(1);
        ProducerRecord<String, byte[]> dead = producer.history().get(0);
        assertThat(dead.topic()).isEqualTo(DEADLETTERS);
        assertThat(dead.key()).isEqualTo("req-0");
        assertThat(header(dead, "stage")).isEqualTo("decode");
        assertThat(header(dead, "reason")).isEqualTo("header_length_past_end");
        assertThat(header(dead, "class")).isEqualTo("io.saeguard.topics.DecodeException");
        assertThat(header(dead, "topic")).isEqualTo(TOPIC);
        assertThat(header(dead, "partition")).isEqualTo("0");
        assertThat(header(dead, "offset")).isEqualTo("1");

        // When the loop goes on
        add(P0, 3);
        loop.pollOnce();

        // Then
        assertThat(engine.handed()).containsExactly("0@0/g0", "0@2/g0", "0@3/g0");
        assertThat(loop.healthy()).isTrue();
    }

    @Test
    void aReplyPartitionTheDecisionsTopicLacksIsDeadLetteredAndARecordNamingAnExistingOneGoesOn() {
        // Given a record asking for decisions on partition 12 of a 12-partition topic, then one asking for partition 11
        startDirect(P0);
        consumer.addRecord(new ConsumerRecord<>(TOPIC, 0, 0, "req-a", ActivationCodec.builder("req-a").replyPartition(DECISION_PARTITIONS)
                .activations(DType.F32, 1, D_IN, new float[D_IN]).encode()));
        consumer.addRecord(new ConsumerRecord<>(TOPIC, 0, 1, "req-b", ActivationCodec.builder("req-b").replyPartition(DECISION_PARTITIONS - 1)
                .activations(DType.F32, 1, D_IN, new float[D_IN]).encode()));

        // When
        loop.pollOnce();

        // Then the first is dead-lettered with a reason that names the range, the second reaches the engine with its partition
        assertThat(producer.history()).hasSize(1);
        ProducerRecord<String, byte[]> dead = producer.history().get(0);
        assertThat(dead.topic()).isEqualTo(DEADLETTERS);
        assertThat(header(dead, "stage")).isEqualTo("validate");
        assertThat(header(dead, "reason")).isEqualTo("reply_partition_out_of_range");
        assertThat(header(dead, "message")).contains("reply_partition 12", "'decisions'", "0..11");
        assertThat(engine.submitted).singleElement().satisfies(w -> {
            assertThat(w.requestId()).isEqualTo("req-b");
            assertThat(w.replyPartition()).hasValue(DECISION_PARTITIONS - 1);
        });
        assertThat(loop.healthy()).isTrue();
    }

    @Test
    void aPromptEventNamingAPartitionTheDecisionsTopicLacksIsDeadLetteredAndOneNamingAnExistingOneGoesOn() {
        // Given a loop that reads prompt events, and two events asking for decisions on partitions 12 and 4
        TopicPartition prompts = new TopicPartition("prompts", 0);
        DirectSink sink = new DirectSink(producer, a -> loop.ack(a), generation);
        SaeRouter router = new SaeRouter(List.of(new SidecarConfig.SaeEntry("sae", Path.of("unused"), Optional.empty(), Optional.empty(), 32)));
        loop = new PollLoop(consumer, List.of(TOPIC, "prompts"), BATCHING, router, Map.of("sae", D_IN), engine,
                new DeadLetterPublisher(sink, DEADLETTERS, metrics), sink, generation, metrics, Optional.empty(),
                Optional.of(new PollLoop.PromptRoute("prompts", "sae", 16)), new ReplyPartitions("decisions", () -> DECISION_PARTITIONS, time),
                Optional.empty(), Optional.empty(), time);
        loop.subscribe();
        consumer.updateBeginningOffsets(Map.of(prompts, 0L));
        consumer.rebalance(List.of(prompts));
        EventCodec codec = new EventCodec();
        consumer.addRecord(new ConsumerRecord<>("prompts", 0, 0, "req-a", codec.encode(PromptEvent.of("req-a", "hello", 0)
                .withReplyPartition(DECISION_PARTITIONS))));
        consumer.addRecord(new ConsumerRecord<>("prompts", 0, 1, "req-b", codec.encode(PromptEvent.of("req-b", "hello", 0).withReplyPartition(4))));

        // When
        loop.pollOnce();

        // Then
        assertThat(producer.history()).singleElement().satisfies(dead -> {
            assertThat(dead.key()).isEqualTo("req-a");
            assertThat(header(dead, "reason")).isEqualTo("reply_partition_out_of_range");
        });
        assertThat(engine.prompts).singleElement().satisfies(w -> assertThat(w.event().replyPartition()).hasValue(4));
    }

    @Test
    void aDeadLetterCountsAsFinishedOnceItsWriteIsAcknowledged() {
        // Given a dead-lettered record between two acknowledged ones
        startDirect(P0);
        add(P0, 0);
        consumer.addRecord(new ConsumerRecord<>(TOPIC, 0, 1, "req-0", new byte[] {1, 2, 3}));
        add(P0, 2);
        loop.pollOnce();
        ack(P0, 0);
        ack(P0, 2);

        // When its write is acknowledged
        time.advanceMillis(COMMIT_INTERVAL_MS);
        loop.pollOnce();
        assertThat(committed(P0)).isEqualTo(1);
        assertThat(producer.completeNext()).isTrue();
        time.advanceMillis(COMMIT_INTERVAL_MS);
        loop.pollOnce();

        // Then the commit moves past it
        assertThat(committed(P0)).isEqualTo(3);
    }

    @Test
    void anUnacknowledgedRecordInTheMiddleHoldsTheCommit() {
        // Given offsets 0, 1, 2 handed over and 0 and 2 acknowledged
        startDirect(P0);
        for (long o = 0; o < 3; o++) {
            add(P0, o);
        }
        loop.pollOnce();
        ack(P0, 0);
        ack(P0, 2);

        // When a commit is due
        time.advanceMillis(COMMIT_INTERVAL_MS);
        loop.pollOnce();

        // Then only offset 0 is committed (the next to read is 1)
        assertThat(committed(P0)).isEqualTo(1);

        // When 1 is acknowledged and the next commit is due
        ack(P0, 1);
        time.advanceMillis(COMMIT_INTERVAL_MS);
        loop.pollOnce();

        // Then all three are
        assertThat(committed(P0)).isEqualTo(3);
        assertThat(metrics.inflightTokens.get()).isZero();
    }

    @Test
    void commitsWaitForTheCommitInterval() {
        // Given an acknowledged record
        startDirect(P0);
        add(P0, 0);
        time.advanceMillis(COMMIT_INTERVAL_MS);
        loop.pollOnce(); // commits nothing (nothing finished) but starts the interval
        ack(P0, 0);

        // When less than the interval passed, Then nothing is committed; once it passed, the offset is
        time.advanceMillis(COMMIT_INTERVAL_MS - 1);
        loop.pollOnce();
        assertThat(committed(P0)).isEqualTo(-1);
        time.advanceMillis(1);
        loop.pollOnce();
        assertThat(committed(P0)).isEqualTo(1);
    }

    @Test
    void backpressurePausesAllAssignedPartitionsAboveMaxInflightTokensWhilePollingGoesOn() {
        // Given 5 records of 2 tokens in flight: 10 > max_inflight_tokens 8
        startDirect(P0, P1);
        for (long o = 0; o < 5; o++) {
            add(P0, o);
        }
        loop.pollOnce();

        // When
        add(P1, 0);
        AtomicInteger polls = new AtomicInteger();
        consumer.schedulePollTask(polls::incrementAndGet);
        loop.pollOnce();

        // Then every assigned partition is paused, the consumer was still polled, and nothing more was handed over
        assertThat(consumer.paused()).containsExactlyInAnyOrder(P0, P1);
        assertThat(polls).hasValue(1);
        assertThat(engine.submitted).hasSize(5);
        assertThat(metrics.pausedPartitions.get()).isEqualTo(2);
    }

    @Test
    void backpressureResumesAtResumeInflightTokens() {
        // Given paused with 10 tokens in flight
        pausedWithTenTokensInFlight();

        // When 6 tokens remain (above resume_inflight_tokens 4)
        ack(P0, 0);
        ack(P0, 1);
        loop.pollOnce();

        // Then still paused
        assertThat(consumer.paused()).hasSize(2);

        // When 4 remain
        ack(P0, 2);
        add(P1, 0);
        loop.pollOnce();

        // Then resumed, and records flow again in the same iteration
        assertThat(consumer.paused()).isEmpty();
        assertThat(metrics.pausedPartitions.get()).isZero();
        assertThat(engine.handed()).endsWith("1@0/g0");
    }

    @Test
    void aPausedLoopWaitsForAnAcknowledgementNotForAPoll() throws Exception {
        // Given paused with 10 tokens in flight
        pausedWithTenTokensInFlight();

        // When, in each paused iteration, an acknowledgement arrives 5 ms in (one of no record's: nothing leaves the count)
        ScheduledExecutorService publisher = Executors.newSingleThreadScheduledExecutor();
        long fastest = Long.MAX_VALUE;
        try {
            for (int i = 0; i < 5; i++) {
                publisher.schedule(() -> loop.ack(new Source(P0, Source.NO_OFFSET, generation.current(), 0)), 5, TimeUnit.MILLISECONDS);
                long t0 = System.nanoTime();
                loop.pollOnce();
                fastest = Math.min(fastest, System.nanoTime() - t0);
                Thread.sleep(10); // the ack has landed before the next iteration's drain
            }
        } finally {
            publisher.shutdownNow();
        }
        // Then the iteration ended with it (a poll(50 ms) of the paused consumer would not have), still paused
        assertThat(fastest).isLessThan(TimeUnit.MILLISECONDS.toNanos(30));
        assertThat(consumer.paused()).hasSize(2);

        // And acknowledgements taken in by an iteration's drain do not end its wait: with none new it waits (up to
        // 50 ms) instead of spinning
        loop.ack(new Source(P0, Source.NO_OFFSET, generation.current(), 0));
        long t0 = System.nanoTime();
        loop.pollOnce();
        assertThat(System.nanoTime() - t0).isGreaterThanOrEqualTo(TimeUnit.MILLISECONDS.toNanos(40));
    }

    @Test
    void partitionsAssignedWhilePausedArePausedToo() {
        // Given P0 paused by backpressure
        startDirect(P0);
        for (long o = 0; o < 5; o++) {
            add(P0, o);
        }
        loop.pollOnce();
        loop.pollOnce();
        assertThat(consumer.paused()).containsExactly(P0);

        // When the group assigns P1 too (inside poll, as a real rebalance)
        consumer.schedulePollTask(() -> consumer.rebalance(List.of(P0, P1)));
        loop.pollOnce();

        // Then
        assertThat(consumer.paused()).containsExactlyInAnyOrder(P0, P1);
    }

    @Test
    void anOutputFailureRewindsToTheCommittedOffsetsUnderANewGeneration() {
        // Given offset 0's decision delivered and committed, offset 1's write failing, offset 2 in flight
        DirectSink sink = new DirectSink(producer, a -> loop.ack(a), generation);
        start(sink, P0, P1);
        for (long o = 0; o < 3; o++) {
            add(P0, o);
        }
        loop.pollOnce();
        for (Work w : engine.submitted) {
            sink.emit(w.source(), List.of(new ProducerRecord<>("decisions", w.requestId(), new byte[0])), () -> { });
        }
        assertThat(producer.completeNext()).isTrue();
        time.advanceMillis(COMMIT_INTERVAL_MS);
        loop.pollOnce();
        assertThat(committed(P0)).isEqualTo(1);
        assertThat(producer.errorNext(new org.apache.kafka.common.errors.TimeoutException("broker away"))).isTrue();
        assertThat(loop.healthy()).isFalse();

        // When the loop runs (the first failure recovers at once) and the broker serves the rewound records again
        loop.pollOnce();
        add(P0, 1);
        add(P0, 2);
        loop.pollOnce();

        // Then the partitions were rewound to the committed offsets, the engine forgot them, the generation advanced,
        // nothing is paused, and offsets 1 and 2 come again under generation 1
        assertThat(generation.current()).isEqualTo(1);
        assertThat(engine.forgotten).containsExactly(Set.of(P0, P1));
        assertThat(consumer.paused()).isEmpty();
        assertThat(engine.handed()).containsExactly("0@0/g0", "0@1/g0", "0@2/g0", "0@1/g1", "0@2/g1");
        assertThat(loop.healthy()).isTrue();
        assertThat(metrics.recoveries.get()).isEqualTo(1);
        assertThat(metrics.inflightTokens.get()).isEqualTo(2 * TOKENS);

        // When offset 2's old decision is acknowledged after all, and offset 1 of the new generation too
        assertThat(producer.completeNext()).isTrue();
        ack(P0, 1);
        time.advanceMillis(COMMIT_INTERVAL_MS);
        loop.pollOnce();

        // Then the stale ack counts for nothing: offset 2 is still to be finished (and its tokens in flight)
        assertThat(committed(P0)).isEqualTo(2);
        assertThat(metrics.inflightTokens.get()).isEqualTo(TOKENS);
    }

    @Test
    void partitionsStayPausedWhileARecoveryWaitsForItsBackoff() {
        // Given a sink that failed and cannot be reset on the first try (the broker is still away)
        ScriptedSink sink = new ScriptedSink(1);
        start(sink, P0, P1);
        sink.failed = true;

        // When
        loop.pollOnce();

        // Then paused, unhealthy, nothing rewound yet
        assertThat(consumer.paused()).containsExactlyInAnyOrder(P0, P1);
        assertThat(loop.healthy()).isFalse();
        assertThat(engine.forgotten).isEmpty();

        // When the backoff (0.5 s) passed
        time.advanceMillis(500);
        loop.pollOnce();

        // Then recovered and resumed
        assertThat(consumer.paused()).isEmpty();
        assertThat(loop.healthy()).isTrue();
        assertThat(engine.forgotten).containsExactly(Set.of(P0, P1));
    }

    @Test
    void recoveryRetriesBackOffFromZeroThroughHalfASecondDoublingUpTo30Seconds() {
        // Given a sink whose reset fails 8 times
        ScriptedSink sink = new ScriptedSink(8);
        start(sink, P0);
        sink.failed = true;
        long t0 = time.milliseconds();

        // When the loop runs in 10 ms steps of the manual clock until the recovery succeeds
        while (!loop.healthy()) {
            loop.pollOnce();
            time.advanceMillis(10);
            assertThat(time.milliseconds() - t0).as("recovered within the expected backoffs").isLessThan(200_000);
        }

        // Then the first try came at once and the retries after 0.5, 1, 2, 4, 8, 16, 30 and 30 s
        List<Long> waits = new ArrayList<>();
        waits.add(sink.resets.get(0) - t0);
        for (int i = 1; i < sink.resets.size(); i++) {
            waits.add(sink.resets.get(i) - sink.resets.get(i - 1));
        }
        assertThat(waits).containsExactly(0L, 500L, 1_000L, 2_000L, 4_000L, 8_000L, 16_000L, 30_000L, 30_000L);
    }

    @Test
    void aFailureSoonAfterARecoveryBacksOffButOneAfterAQuietMinuteDoesNot() {
        // Given a recovered failure
        ScriptedSink sink = new ScriptedSink(0);
        start(sink, P0);
        sink.failed = true;
        loop.pollOnce();
        assertThat(sink.resets).hasSize(1);

        // When the sink fails again 59 s later, Then the retry waits 0.5 s
        time.advanceMillis(59_000);
        sink.failed = true;
        loop.pollOnce();
        assertThat(sink.resets).hasSize(1);
        time.advanceMillis(500);
        loop.pollOnce();
        assertThat(sink.resets).hasSize(2);

        // When it fails again after a quiet minute, Then it recovers at once
        time.advanceMillis(60_000);
        sink.failed = true;
        loop.pollOnce();
        assertThat(sink.resets).hasSize(3);
    }

    @Test
    void revocationCommitsTheFinishedOffsetsAndTellsTheEngineToForget() {
        // Given P0's offsets 0 and 1 acknowledged and 2 not, P1's 0 acknowledged, nothing committed yet
        startDirect(P0, P1);
        for (long o = 0; o < 3; o++) {
            add(P0, o);
        }
        add(P1, 0);
        loop.pollOnce();
        ack(P0, 0);
        ack(P0, 1);
        ack(P1, 0);
        long before = time.milliseconds();

        // When the group takes P0 away
        consumer.schedulePollTask(() -> consumer.rebalance(List.of(P1)));
        loop.pollOnce();

        // Then P0's finished prefix is committed after waiting (bounded, 10 s) for offset 2, P1's is not yet,
        // and the engine drops P0's request state
        assertThat(syncCommits).containsExactly(Map.of(P0, new OffsetAndMetadata(2)));
        assertThat(committed(P1)).isEqualTo(-1);
        assertThat(time.milliseconds() - before).isBetween(10_000L, 10_010L);
        assertThat(engine.forgotten).containsExactly(Set.of(P0));
    }

    @Test
    void revocationCommitsAtOnceWhenEverythingFinished() {
        // Given all of P0's records acknowledged
        startDirect(P0);
        add(P0, 0);
        loop.pollOnce();
        ack(P0, 0);
        long before = time.milliseconds();

        // When P0 is revoked
        consumer.schedulePollTask(() -> consumer.rebalance(List.of()));
        loop.pollOnce();

        // Then committed without waiting
        assertThat(syncCommits).containsExactly(Map.of(P0, new OffsetAndMetadata(1)));
        assertThat(time.milliseconds()).isEqualTo(before);
        assertThat(engine.forgotten).containsExactly(Set.of(P0));
    }

    /** An output sink failed by the test, whose reset throws its first {@code failingResets} times; records reset times (ms). */
    private final class ScriptedSink implements OutputSink {
        volatile boolean failed;
        private int failingResets;
        final List<Long> resets = new ArrayList<>();

        ScriptedSink(int failingResets) {
            this.failingResets = failingResets;
        }

        @Override
        public void emit(Source source, List<ProducerRecord<String, byte[]>> outputs, Runnable onDelivered) {
            onDelivered.run();
            loop.ack(source);
        }

        @Override
        public boolean failed() {
            return failed;
        }

        @Override
        public void reset() {
            resets.add(time.milliseconds());
            if (failingResets > 0) {
                failingResets--;
                throw new org.apache.kafka.common.errors.TimeoutException("broker still away");
            }
            failed = false;
        }
    }

    @Test
    void aVerdictGoesToTheEngineAndAMalformedOneIsDeadLetteredAtTheJudgeStage() {
        // Given a valid verdict, then one without its action and reason
        startDirect(P0, V0);
        byte[] valid = new io.saeguard.topics.events.EventCodec().encode(new io.saeguard.topics.events.JudgeVerdict("req-0", "d",
                io.saeguard.topics.events.Action.BLOCK, "unsafe", Optional.of("m"), java.util.OptionalLong.empty()));
        consumer.addRecord(new ConsumerRecord<>(VERDICTS, 0, 0, "req-0", valid));
        consumer.addRecord(new ConsumerRecord<>(VERDICTS, 0, 1, "req-0", "{\"request_id\":\"req-0\"}".getBytes(StandardCharsets.UTF_8)));

        // When
        loop.pollOnce();

        // Then the valid one is the engine's, the malformed one a dead letter with the judge stage and reason
        assertThat(engine.verdicts).singleElement().satisfies(v -> {
            assertThat(v.verdict().action()).isEqualTo(io.saeguard.topics.events.Action.BLOCK);
            assertThat(v.source().offset()).isZero();
        });
        assertThat(engine.submitted).isEmpty();
        assertThat(producer.history()).singleElement().satisfies(dead -> {
            assertThat(dead.topic()).isEqualTo(DEADLETTERS);
            assertThat(header(dead, "stage")).isEqualTo("judge");
            assertThat(header(dead, "reason")).isEqualTo("malformed_verdict");
            assertThat(header(dead, "offset")).isEqualTo("1");
        });
    }

    @Test
    void anAcknowledgementOfOutputsOfNoRecordFinishesNothing() {
        // Given a record in flight at offset 0
        startDirect(P0);
        add(P0, 0);
        loop.pollOnce();

        // When a judge fallback of that partition (no offset) is acknowledged
        loop.ack(new Source(P0, Source.NO_OFFSET, generation.current(), 0));
        time.advanceMillis(1_000);
        loop.pollOnce();

        // Then the record still holds the commit
        assertThat(committed(P0)).isEqualTo(-1);
    }
}
