package io.saeguard.sidecar.review;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.saeguard.topics.events.EventCodec;
import io.saeguard.topics.events.Review;
import io.saeguard.topics.events.Verdict;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.MockConsumer;
import org.apache.kafka.clients.producer.MockProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;

class ReviewLogTest {
    private static final String TOPIC = "reviews";
    private static final EventCodec CODEC = new EventCodec();
    private final MockConsumer<String, byte[]> consumer = new MockConsumer<>("earliest");

    private static Review review(String requestId, long seq, Verdict verdict, long time) {
        return new Review(requestId, seq, verdict, "toxicity", "alice", Optional.of("<script>x</script>"), time);
    }

    private static ConsumerRecord<String, byte[]> record(Review r, long offset) {
        return new ConsumerRecord<>(TOPIC, 0, offset, r.key(), CODEC.encode(r));
    }

    private ReviewLog log(MockProducer<String, byte[]> producer) {
        return new ReviewLog(TOPIC, producer, consumer);
    }

    private static MockProducer<String, byte[]> producer(boolean autoComplete) {
        return new MockProducer<>(autoComplete, null, new StringSerializer(), new ByteArraySerializer());
    }

    @Test
    void aLaterVerdictOnAnAlertReplacesAnEarlierOne() {
        // Given
        ReviewLog log = log(producer(true));

        // When
        log.read(record(review("r", 1, Verdict.TRUE_POSITIVE, 10), 0));
        log.read(record(review("r", 1, Verdict.FALSE_POSITIVE, 20), 1));
        log.read(record(review("q", 0, Verdict.UNSURE, 15), 2));

        // Then
        assertThat(log.get("r", 1, "toxicity")).map(Review::verdict).contains(Verdict.FALSE_POSITIVE);
        assertThat(log.all()).extracting(Review::alertId).containsExactly("q/0", "r/1");
    }

    @Test
    void aRecordOfAnEarlierOffsetArrivingLaterReplacesNothing() {
        // Given the producer's acknowledgement applied offset 5 first
        ReviewLog log = log(producer(true));
        log.apply("r/1/toxicity", Optional.of(review("r", 1, Verdict.FALSE_POSITIVE, 20)), 5);

        // When the reader reaches an older record of the same alert
        log.read(record(review("r", 1, Verdict.TRUE_POSITIVE, 10), 4));

        // Then
        assertThat(log.get("r", 1, "toxicity")).map(Review::verdict).contains(Verdict.FALSE_POSITIVE);
    }

    @Test
    void aTombstoneRemovesTheReview() {
        // Given
        ReviewLog log = log(producer(true));
        log.read(record(review("r", 1, Verdict.TRUE_POSITIVE, 10), 0));

        // When
        log.read(new ConsumerRecord<>(TOPIC, 0, 1, "r/1/toxicity", null));

        // Then
        assertThat(log.get("r", 1, "toxicity")).isEmpty();
    }

    @Test
    void listenersHearOfNewAndChangedVerdictsButNotOfTheSameOneReadAgain() {
        // Given
        ReviewLog log = log(producer(true));
        List<Review> told = new CopyOnWriteArrayList<>();
        log.subscribe(told::add);
        Review first = review("r", 1, Verdict.TRUE_POSITIVE, 10);

        // When the producer's acknowledgement and then the reader apply the same record, and a change follows
        log.apply(first.key(), Optional.of(first), 0);
        log.read(record(first, 0));
        log.read(record(review("r", 1, Verdict.UNSURE, 11), 1));

        // Then
        assertThat(told).extracting(Review::verdict).containsExactly(Verdict.TRUE_POSITIVE, Verdict.UNSURE);
    }

    @Test
    void recordsThatAreNotReviewsOrWhoseKeyIsNotTheirAlertIdAreSkipped() {
        // Given
        ReviewLog log = log(producer(true));
        Review r = review("r", 1, Verdict.TRUE_POSITIVE, 10);

        // When
        log.read(new ConsumerRecord<>(TOPIC, 0, 0, "r/1/toxicity", "{}".getBytes(StandardCharsets.UTF_8)));
        log.read(new ConsumerRecord<>(TOPIC, 0, 1, "r/1", CODEC.encode(r)));
        log.read(new ConsumerRecord<>(TOPIC, 0, 2, null, CODEC.encode(r)));

        // Then
        assertThat(log.all()).isEmpty();
    }

    @Test
    void publishWritesTheReviewUnderItsAlertIdAndAppliesItOnceKafkaAcknowledged() throws Exception {
        // Given
        MockProducer<String, byte[]> producer = producer(true);
        ReviewLog log = log(producer);
        Review r = review("req-7", 3, Verdict.FALSE_POSITIVE, 42);

        // When
        Review published = log.publish(r).get(5, TimeUnit.SECONDS);

        // Then
        assertThat(published).isEqualTo(r);
        ProducerRecord<String, byte[]> sent = producer.history().get(0);
        assertThat(sent.topic()).isEqualTo(TOPIC);
        assertThat(sent.key()).isEqualTo("req-7/3/toxicity");
        assertThat(CODEC.decodeReview(sent.value())).isEqualTo(r);
        assertThat(new String(sent.headers().lastHeader(ReviewLog.WHO).value(), StandardCharsets.UTF_8)).isEqualTo("alice");
        assertThat(new String(sent.headers().lastHeader(ReviewLog.WHEN).value(), StandardCharsets.UTF_8)).isEqualTo("42");
        assertThat(log.get("req-7", 3, "toxicity")).contains(r);
    }

    @Test
    void aReviewKafkaRefusedFailsItsFutureAndIsNotApplied() throws Exception {
        // Given
        MockProducer<String, byte[]> producer = producer(false);
        ReviewLog log = log(producer);
        var future = log.publish(review("r", 1, Verdict.TRUE_POSITIVE, 1));
        org.awaitility.Awaitility.await().until(() -> !producer.history().isEmpty());

        // When
        producer.errorNext(new org.apache.kafka.common.errors.TimeoutException("no leader"));

        // Then
        assertThatThrownBy(() -> future.get(5, TimeUnit.SECONDS)).isInstanceOf(ExecutionException.class)
                .hasCauseInstanceOf(ReviewUnavailableException.class).hasMessageContaining("no leader");
        assertThat(log.get("r", 1, "toxicity")).isEmpty();
    }
}
