package io.saeguard.sidecar.review;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.saeguard.topics.events.Action;
import io.saeguard.topics.events.Decision;
import io.saeguard.topics.events.EventCodec;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.TreeSet;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.MockConsumer;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.record.TimestampType;
import org.junit.jupiter.api.Test;

class RequestDecisionsTest {
    private static final String TOPIC = "decisions";
    private static final int PARTITIONS = 4;
    private static final EventCodec CODEC = new EventCodec();
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long NOW = 10_000_000L;

    /** A log per partition, records with timestamps; MockConsumer has no offsetsForTimes, so this one answers from the log. */
    private final Map<Integer, List<ConsumerRecord<String, byte[]>>> logs = new HashMap<>();
    private final Map<Integer, Long> logStarts = new HashMap<>();

    private final class LogConsumer extends MockConsumer<String, byte[]> {
        LogConsumer() {
            super("earliest");
            List<PartitionInfo> infos = new ArrayList<>();
            Map<TopicPartition, Long> begin = new HashMap<>();
            Map<TopicPartition, Long> end = new HashMap<>();
            for (int p = 0; p < PARTITIONS; p++) {
                infos.add(new PartitionInfo(TOPIC, p, Node.noNode(), new Node[0], new Node[0]));
                List<ConsumerRecord<String, byte[]>> log = logs.getOrDefault(p, List.of());
                long start = logStarts.getOrDefault(p, 0L);
                begin.put(new TopicPartition(TOPIC, p), start);
                end.put(new TopicPartition(TOPIC, p), start + log.size());
            }
            updatePartitions(TOPIC, infos);
            updateBeginningOffsets(begin);
            updateEndOffsets(end);
        }

        @Override
        public synchronized void assign(Collection<TopicPartition> partitions) {
            super.assign(partitions);
            for (TopicPartition tp : partitions) {
                logs.getOrDefault(tp.partition(), List.of()).forEach(this::addRecord);
            }
        }

        @Override
        public synchronized Map<TopicPartition, OffsetAndTimestamp> offsetsForTimes(Map<TopicPartition, Long> times, Duration timeout) {
            Map<TopicPartition, OffsetAndTimestamp> out = new HashMap<>();
            times.forEach((tp, t) -> logs.getOrDefault(tp.partition(), List.of()).stream().filter(r -> r.timestamp() >= t).findFirst()
                    .ifPresent(r -> out.put(tp, new OffsetAndTimestamp(r.offset(), r.timestamp()))));
            return out;
        }
    }

    private void append(int partition, String key, long timestamp, byte[] value) {
        List<ConsumerRecord<String, byte[]>> log = logs.computeIfAbsent(partition, p -> new ArrayList<>());
        long offset = logStarts.getOrDefault(partition, 0L) + log.size();
        log.add(new ConsumerRecord<>(TOPIC, partition, offset, timestamp, TimestampType.CREATE_TIME, 0, 0, key, value,
                new org.apache.kafka.common.header.internals.RecordHeaders(), Optional.empty()));
    }

    private void decision(int partition, String requestId, long seq, Action action, long timestamp) {
        Decision.Builder b = Decision.builder(requestId, seq, action, seq * 4);
        if (action != Action.ALLOW) {
            b.detector("toxicity").score(1.2).reason("fired");
        }
        append(partition, requestId, timestamp, CODEC.encode(b.build()));
    }

    private RequestDecisions reader(int maxScanned) {
        return new RequestDecisions(TOPIC, LogConsumer::new, () -> NOW, maxScanned, Duration.ofSeconds(1));
    }

    private static Optional<AlertLog.Alerted> alerted(long firstTime, Long... seqs) {
        return Optional.of(new AlertLog.Alerted(OptionalLong.of(firstTime), new TreeSet<>(List.of(seqs))));
    }

    private static List<String> actions(RequestDecisions.Lookup lookup) {
        return lookup.decisions().stream().map(d -> {
            try {
                return JSON.readTree(d).path("seq").asText() + ":" + JSON.readTree(d).path("action").asText();
            } catch (java.io.IOException e) {
                throw new AssertionError(e);
            }
        }).toList();
    }

    @Test
    void aRequestsDecisionsOnItsKeysPartitionComeInSeqOrderWithoutOtherRequestsOrRepeats() {
        // Given req-1's decisions on its key's partition, out of seq order, one redelivered, between another request's
        int home = RequestDecisions.partitionOf("req-1", PARTITIONS);
        decision(home, "req-1", 0, Action.ALLOW, NOW - 5_000);
        decision(home, "other", 0, Action.BLOCK, NOW - 4_900);
        decision(home, "req-1", 2, Action.FLAG, NOW - 4_000);
        decision(home, "req-1", 1, Action.FLAG, NOW - 4_500);
        decision(home, "req-1", 2, Action.FLAG, NOW - 3_000);
        decision(home, "req-1", 3, Action.ALLOW, NOW - 2_000);

        // When it is looked up with its alert (seq 1) known
        RequestDecisions.Lookup lookup = reader(1000).read("req-1", alerted(NOW - 4_500, 1L));

        // Then every decision is there once, in seq order, from reading that partition alone
        assertThat(actions(lookup)).containsExactly("0:allow", "1:flag", "2:flag", "3:allow");
        assertThat(lookup.scanned()).isEqualTo(6);
        assertThat(lookup.complete()).isTrue();
    }

    @Test
    void decisionsSentToAReplyPartitionAreFoundOnTheOtherPartitions() {
        // Given req-2's decisions on a partition other than its key's (its records named a reply partition)
        int home = RequestDecisions.partitionOf("req-2", PARTITIONS);
        int reply = (home + 1) % PARTITIONS;
        decision(home, "someone-else", 0, Action.ALLOW, NOW - 1_000);
        decision(reply, "req-2", 0, Action.ALLOW, NOW - 1_000);
        decision(reply, "req-2", 1, Action.BLOCK, NOW - 900);

        // When it is looked up without a known alert
        RequestDecisions.Lookup lookup = reader(1000).read("req-2", Optional.empty());

        // Then both are found, after reading every partition
        assertThat(actions(lookup)).containsExactly("0:allow", "1:block");
        assertThat(lookup.scanned()).isEqualTo(3);
        assertThat(lookup.complete()).isTrue();
    }

    @Test
    void theLookupStartsAtTheFirstAlertMinusTheMarginAndSaysWhenItMissedTheFirstDecision() {
        // Given a request whose first decision is older than its first alert minus the margin, on a log with older records
        int home = RequestDecisions.partitionOf("req-3", PARTITIONS);
        long alertAt = NOW - 1_000;
        decision(home, "req-3", 0, Action.ALLOW, alertAt - RequestDecisions.MARGIN.toMillis() - 1);
        decision(home, "req-3", 1, Action.FLAG, alertAt);

        // When it is looked up
        RequestDecisions.Lookup lookup = reader(1000).read("req-3", alerted(alertAt, 1L));

        // Then only the window was read, and the answer says it may lack decisions
        assertThat(actions(lookup)).containsExactly("1:flag");
        assertThat(lookup.scanned()).isEqualTo(1);
        assertThat(lookup.complete()).isFalse();
    }

    @Test
    void theRecordCapCutsTheLookupAndSaysSo() {
        // Given a partition of 10 records in the window, req-4's last
        int home = RequestDecisions.partitionOf("req-4", PARTITIONS);
        for (int i = 0; i < 9; i++) {
            decision(home, "noise-" + i, 0, Action.ALLOW, NOW - 100);
        }
        decision(home, "req-4", 0, Action.ALLOW, NOW - 50);

        // When the lookup may read 5 records
        RequestDecisions.Lookup lookup = reader(5).read("req-4", Optional.empty());

        // Then it read 5, found nothing, and says it is not complete
        assertThat(lookup.scanned()).isEqualTo(5);
        assertThat(lookup.decisions()).isEmpty();
        assertThat(lookup.complete()).isFalse();
    }

    @Test
    void anUnknownRequestIsAnEmptyCompleteAnswerWhenTheWholeLogWasRead() {
        // Given a log holding only other requests, all in the window
        decision(0, "a", 0, Action.ALLOW, NOW - 100);
        decision(1, "b", 0, Action.ALLOW, NOW - 100);

        // When an unknown request is looked up
        RequestDecisions.Lookup lookup = reader(1000).read("nobody", Optional.empty());

        // Then the answer is empty and complete
        assertThat(lookup.decisions()).isEmpty();
        assertThat(lookup.complete()).isTrue();
    }

    @Test
    void moreThanTheConcurrentLookupsAreRefused() throws Exception {
        // Given lookups whose consumers block until released
        CountDownLatch release = new CountDownLatch(1);
        CountDownLatch opened = new CountDownLatch(RequestDecisions.MAX_CONCURRENT);
        RequestDecisions reader = new RequestDecisions(TOPIC, () -> {
            opened.countDown();
            try {
                release.await(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return new LogConsumer();
        }, () -> NOW, 10, Duration.ofSeconds(1));
        List<Thread> running = new ArrayList<>();
        for (int i = 0; i < RequestDecisions.MAX_CONCURRENT; i++) {
            Thread t = new Thread(() -> reader.read("r", Optional.empty()));
            t.start();
            running.add(t);
        }
        assertThat(opened.await(10, TimeUnit.SECONDS)).isTrue();

        // When one more lookup comes, then it is refused
        assertThatThrownBy(() -> reader.read("r", Optional.empty())).isInstanceOf(ReviewUnavailableException.class)
                .hasMessageContaining("retry");
        release.countDown();
        for (Thread t : running) {
            t.join(10_000);
        }
    }

    @Test
    void partitionOfIsKafkasDefaultPartitioner() {
        // Given Kafka's own default partitioning of a UTF-8 key (BuiltInPartitioner.partitionForKey)
        byte[] key = "req-7f3a".getBytes(java.nio.charset.StandardCharsets.UTF_8);

        // Then the lookup reads that partition
        assertThat(RequestDecisions.partitionOf("req-7f3a", 12))
                .isEqualTo(org.apache.kafka.clients.producer.internals.BuiltInPartitioner.partitionForKey(key, 12));
    }
}
