package io.saeguard.sidecar.pipeline;

import io.saeguard.sidecar.app.Sidecar;
import static org.assertj.core.api.Assertions.assertThat;

import io.saeguard.sae.PythonSaeFixtures;
import io.saeguard.sidecar.testing.KafkaBroker;
import io.saeguard.sidecar.testing.KafkaBrokerExtension;
import io.saeguard.topics.activation.ActivationCodec;
import io.saeguard.topics.catalog.TopicRole;
import io.saeguard.topics.events.Decision;
import io.saeguard.topics.events.EventCodec;
import io.saeguard.topics.events.Phase;
import io.saeguard.topics.safetensors.DType;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Backpressure (issue 4): above {@code max_inflight_tokens} the sidecar pauses its partitions while
 * the poll loop keeps running, so its memory follows the cap, not the backlog, and its group
 * membership survives a long pause; partitions assigned while paused are paused too.
 */
@ExtendWith(KafkaBrokerExtension.class)
class BackpressureIT {
    private static final long SEED = new Random().nextLong() & 0x7fffffffL;
    private static final EventCodec CODEC = new EventCodec();

    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        System.out.println("BackpressureIT seed=" + SEED);
        PythonSaeFixtures.assumeAvailable();
    }

    @Test
    void backpressurePausesPartitionsWhileThePollLoopKeepsTheMemberAlive(KafkaBroker kafka) throws Exception {
        // Given a tiny in-flight cap, small polls, and a max.poll.interval far shorter than the stall below
        Scenario s = Scenario.create(dir, kafka.bootstrap(), SEED, "batching:\n  max_inflight_tokens: 8\n  resume_inflight_tokens: 4\n");
        consumerProperties(s, "max.poll.records", "5", "max.poll.interval.ms", "4000");
        try (Sidecar sidecar = Sidecar.start(s.config())) {
            Awaitility.await().atMost(Duration.ofSeconds(60)).until(sidecar::ready);
            double assignmentsBefore = sidecar.metrics().assignments.get();

            // When the engine stalls for 9 s while 30 records (120 tokens) arrive
            var stall = sidecar.engine().call(() -> {
                try {
                    Thread.sleep(9000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                return null;
            });
            try (var producer = s.producer()) {
                for (int i = 0; i < 30; i++) {
                    producer.send(new ProducerRecord<>(s.topic(TopicRole.ACTIVATIONS), "bp-" + i,
                            s.record("bp-" + i, i * Scenario.TOKENS_PER_RECORD, 0, true)));
                }
            }
            double maxInflight = 0;
            double maxPaused = 0;
            while (!stall.isDone()) {
                maxInflight = Math.max(maxInflight, sidecar.metrics().inflightTokens.get());
                maxPaused = Math.max(maxPaused, sidecar.metrics().pausedPartitions.get());
                Thread.sleep(50);
            }

            // Then the partitions were paused, in-flight stayed within the cap plus one poll, and no rebalance happened
            assertThat(maxPaused).isPositive();
            assertThat(maxInflight).isLessThanOrEqualTo(8 + 5 * Scenario.TOKENS_PER_RECORD);
            assertThat(sidecar.metrics().assignments.get()).isEqualTo(assignmentsBefore);
            // And everything is decided once the engine is back
            assertThat(s.read(TopicRole.DECISIONS, 30, Duration.ofSeconds(90))).hasSize(30);
            assertThat(sidecar.metrics().pausedPartitions.get()).isZero();
        }
    }

    @Test
    void whilePausedTheHeapFollowsTheCapNotTheBacklog(KafkaBroker kafka) throws Exception {
        // Given a cap of one record of 1024 tokens (256 KiB of F32 activations), one record per poll, fetches of at most
        // 1 MiB, and an engine held still
        int recordTokens = 1024;
        int cap = recordTokens;
        long fetchMaxBytes = 1 << 20;
        Scenario s = Scenario.create(dir, kafka.bootstrap(), SEED, "batching:\n  max_inflight_tokens: " + cap
                + "\n  resume_inflight_tokens: " + cap / 2 + "\n");
        consumerProperties(s, "max.poll.records", "1", "fetch.max.bytes", Long.toString(fetchMaxBytes), "max.partition.fetch.bytes",
                Long.toString(fetchMaxBytes));
        long recordBytes = (long) recordTokens * s.dIn * Float.BYTES;
        long inflightBound = cap + recordTokens;
        // Bound on the heap's growth: per in-flight token the sidecar holds the record's bytes and their F32 copy (Work),
        // counted twice over for slack; the consumer holds at most one fetch response, counted twice; 16 MiB is for what
        // else comes and goes on a heap shared with the broker, the producer's requests and the test.
        long heapBound = 4 * inflightBound * s.dIn * Float.BYTES + 2 * fetchMaxBytes + (16L << 20);
        // A backlog ten times the bound: buffering it, or any sizeable part of it, would break the bound.
        int backlog = (int) (10 * heapBound / recordBytes) + 1;
        try (Sidecar sidecar = Sidecar.start(s.config())) {
            Awaitility.await().atMost(Duration.ofSeconds(60)).until(sidecar::ready);
            double assignmentsBefore = sidecar.metrics().assignments.get();
            try (EngineHold hold = EngineHold.on(sidecar)) {
                long baseline = usedHeapAfterGc();

                // When a backlog of ten times the bound is written to the topic
                try (KafkaProducer<String, byte[]> producer = s.producer()) {
                    for (int i = 0; i < backlog; i++) {
                        producer.send(new ProducerRecord<>(s.topic(TopicRole.ACTIVATIONS), "heap-" + i, record(s, "heap-" + i, recordTokens)));
                    }
                    producer.flush();
                }
                Awaitility.await().atMost(Duration.ofSeconds(60)).until(() -> sidecar.metrics().pausedPartitions.get() > 0);

                // Then, sampled after a GC each time for some 5 s, the in-flight count stays within the cap plus one record
                // and the heap within the bound
                double maxInflight = 0;
                long maxGrowth = Long.MIN_VALUE;
                for (int i = 0; i < 12; i++) {
                    maxInflight = Math.max(maxInflight, sidecar.metrics().inflightTokens.get());
                    maxGrowth = Math.max(maxGrowth, usedHeapAfterGc() - baseline);
                    Thread.sleep(400);
                }
                System.out.printf("BackpressureIT heap: backlog %d records (%d MiB), bound %d MiB, largest growth while paused %.1f MiB,"
                        + " largest in-flight %d tokens%n", backlog, backlog * recordBytes >> 20, heapBound >> 20, maxGrowth / 1048576.0,
                        (long) maxInflight);
                assertThat(maxInflight).as("in-flight tokens while paused").isLessThanOrEqualTo(inflightBound);
                assertThat(maxGrowth).as("heap growth (bytes) after GC while paused, backlog " + backlog * recordBytes + " bytes")
                        .isLessThanOrEqualTo(heapBound);
            }

            // And once the engine is back the whole backlog is decided, without a rebalance
            awaitDecided(s, backlog, Duration.ofSeconds(300));
            assertThat(sidecar.metrics().assignments.get()).isEqualTo(assignmentsBefore);
            Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> sidecar.metrics().pausedPartitions.get() == 0);
        }
    }

    @Test
    void partitionsAssignedWhilePausedArePausedToo(KafkaBroker kafka) throws Exception {
        // Given a sidecar with a cap of two records, one record per poll, and a second member of its group holding some
        // partitions without consuming them
        Scenario s = Scenario.create(dir, kafka.bootstrap(), SEED, "batching:\n  max_inflight_tokens: 8\n  resume_inflight_tokens: 4\n");
        consumerProperties(s, "max.poll.records", "1");
        String group = s.config().kafka().group();
        int inflightBound = 8 + Scenario.TOKENS_PER_RECORD;
        int perPartition = 5;
        try (Sidecar sidecar = Sidecar.start(s.config());
                Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrap()))) {
            Awaitility.await().atMost(Duration.ofSeconds(60)).until(sidecar::ready);
            int partitions = admin.describeTopics(List.of(s.topic(TopicRole.ACTIVATIONS))).allTopicNames().get(30, TimeUnit.SECONDS)
                    .get(s.topic(TopicRole.ACTIVATIONS)).partitions().size();
            Set<TopicPartition> moved;
            try (IdleMember other = IdleMember.join(s, group)) {
                Awaitility.await().atMost(Duration.ofSeconds(60)).until(() -> !other.assignment().isEmpty()
                        && members(admin, group).size() == 2);
                moved = other.assignment();
                try (EngineHold hold = EngineHold.on(sidecar)) {
                    // When records wait on every partition, the sidecar pauses, and then the other member leaves, so that its
                    // partitions (with their records) are assigned to the paused sidecar
                    try (KafkaProducer<String, byte[]> producer = s.producer()) {
                        for (int p = 0; p < partitions; p++) {
                            for (int i = 0; i < perPartition; i++) {
                                String request = "move-" + p + "-" + i;
                                producer.send(new ProducerRecord<>(s.topic(TopicRole.ACTIVATIONS), p, request, s.record(request,
                                        i * Scenario.TOKENS_PER_RECORD, 0, true)));
                            }
                        }
                        producer.flush();
                    }
                    Awaitility.await().atMost(Duration.ofSeconds(60)).until(() -> sidecar.metrics().pausedPartitions.get() > 0);
                    double assignmentsWhilePaused = sidecar.metrics().assignments.get();
                    other.close();
                    Awaitility.await().atMost(Duration.ofSeconds(60)).until(() -> sidecar.metrics().assignments.get() > assignmentsWhilePaused
                            && members(admin, group).size() == 1
                            && members(admin, group).iterator().next().assignment().topicPartitions().size() == partitions);

                    // Then the moved partitions stay paused: over 3 s the in-flight count stays within the cap plus one record,
                    // although they hold more tokens than that
                    assertThat((long) moved.size() * perPartition * Scenario.TOKENS_PER_RECORD).as("tokens waiting on the moved partitions")
                            .isGreaterThan(inflightBound);
                    double maxInflight = 0;
                    for (int i = 0; i < 60; i++) {
                        maxInflight = Math.max(maxInflight, sidecar.metrics().inflightTokens.get());
                        Thread.sleep(50);
                    }
                    System.out.println("BackpressureIT reassignment: " + moved.size() + " partitions moved to the paused sidecar, largest in-flight "
                            + (long) maxInflight + " tokens");
                    assertThat(maxInflight).as("in-flight tokens after partitions were assigned while paused").isLessThanOrEqualTo(inflightBound);
                    // And the paused-partitions gauge counts the moved ones too
                    assertThat(sidecar.metrics().pausedPartitions.get()).as("saeguard_paused_partitions").isEqualTo(partitions);
                }
            }

            // And once the engine is back every record is decided
            awaitDecided(s, partitions * perPartition, Duration.ofSeconds(90));
            Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> sidecar.metrics().pausedPartitions.get() == 0);
        }
    }

    /** Adds Kafka consumer properties to the scenario's config file. */
    private static void consumerProperties(Scenario s, String... keyValues) throws Exception {
        StringBuilder extra = new StringBuilder("    heartbeat.interval.ms: \"1000\"");
        for (int i = 0; i < keyValues.length; i += 2) {
            extra.append("\n    ").append(keyValues[i]).append(": \"").append(keyValues[i + 1]).append('"');
        }
        Files.writeString(s.configFile, Files.readString(s.configFile).replace("    heartbeat.interval.ms: \"1000\"", extra));
    }

    /** An activation record of {@code tokens} tokens, the scenario's reference inputs over and over. */
    private static byte[] record(Scenario s, String requestId, int tokens) {
        float[] rows = new float[tokens * s.dIn];
        for (int t = 0; t < tokens; t++) {
            System.arraycopy(s.inputs, (t % s.tokens) * s.dIn, rows, t * s.dIn, s.dIn);
        }
        return ActivationCodec.builder(requestId).model("test-model").hook("blocks.3.hook_resid_post").position(0).phase(Phase.PROMPT)
                .isFinal(true).activations(DType.F32, tokens, s.dIn, rows).encode();
    }

    /** The heap in use right after a full GC: the smallest of three tries. */
    private static long usedHeapAfterGc() {
        MemoryMXBean memory = ManagementFactory.getMemoryMXBean();
        long least = Long.MAX_VALUE;
        for (int i = 0; i < 3; i++) {
            memory.gc();
            least = Math.min(least, memory.getHeapMemoryUsage().getUsed());
        }
        return least;
    }

    private static void awaitDecided(Scenario s, int count, Duration timeout) {
        Awaitility.await().atMost(timeout).pollInterval(Duration.ofSeconds(1)).until(() -> {
            Set<String> decided = new HashSet<>();
            for (ConsumerRecord<String, byte[]> r : s.readToEnd(TopicRole.DECISIONS)) {
                Decision d = CODEC.decodeDecision(r.value());
                decided.add(d.requestId() + "@" + d.position());
            }
            return decided.size() >= count;
        });
    }

    private static Collection<MemberDescription> members(Admin admin, String group) throws Exception {
        ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).describedGroups().get(group).get(30, TimeUnit.SECONDS);
        return d.members();
    }

    /** Holds the engine thread still (a call waiting on a latch) until closed. */
    private static final class EngineHold implements AutoCloseable {
        private final CountDownLatch release = new CountDownLatch(1);

        static EngineHold on(Sidecar sidecar) throws InterruptedException {
            EngineHold hold = new EngineHold();
            CountDownLatch holding = new CountDownLatch(1);
            sidecar.engine().call(() -> {
                holding.countDown();
                try {
                    hold.release.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                return null;
            });
            if (!holding.await(30, TimeUnit.SECONDS)) {
                hold.close();
                throw new AssertionError("the engine thread did not take the hold within 30 s");
            }
            return hold;
        }

        @Override
        public void close() {
            release.countDown();
        }
    }

    /**
     * A member of the sidecar's consumer group (same assignor) that takes its share of the partitions
     * and pauses them, consuming and committing nothing; it leaves the group on {@link #close()}.
     */
    private static final class IdleMember implements AutoCloseable {
        private final AtomicReference<Set<TopicPartition>> assignment = new AtomicReference<>(Set.of());
        private final AtomicBoolean closing = new AtomicBoolean();
        private final Thread thread;

        private IdleMember(KafkaConsumer<String, byte[]> consumer, String topic) {
            thread = new Thread(() -> {
                try (consumer) {
                    consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                        @Override
                        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
                            Set<TopicPartition> now = new HashSet<>(assignment.get());
                            now.removeAll(partitions);
                            assignment.set(Set.copyOf(now));
                        }

                        @Override
                        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
                            consumer.pause(partitions);
                            Set<TopicPartition> now = new HashSet<>(assignment.get());
                            now.addAll(partitions);
                            assignment.set(Set.copyOf(now));
                        }
                    });
                    while (!closing.get()) {
                        consumer.poll(Duration.ofMillis(100));
                    }
                }
            }, "idle-member");
        }

        static IdleMember join(Scenario s, String group) {
            KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(Map.of(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, s.bootstrap,
                    ConsumerConfig.GROUP_ID_CONFIG, group, ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false",
                    ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, CooperativeStickyAssignor.class.getName(),
                    ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "10000", ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "1000"),
                    new StringDeserializer(), new ByteArrayDeserializer());
            IdleMember member = new IdleMember(consumer, s.topic(TopicRole.ACTIVATIONS));
            member.thread.start();
            return member;
        }

        Set<TopicPartition> assignment() {
            return assignment.get();
        }

        /** Leaves the group (idempotent). */
        @Override
        public void close() throws InterruptedException {
            closing.set(true);
            thread.join(TimeUnit.SECONDS.toMillis(60));
        }
    }
}
