package io.saeguard.sidecar.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import io.saeguard.sae.PythonSaeFixtures;
import io.saeguard.sidecar.app.Sidecar;
import io.saeguard.sidecar.testing.KafkaBroker;
import io.saeguard.sidecar.testing.KafkaBrokerExtension;
import io.saeguard.topics.catalog.TopicRole;
import io.saeguard.topics.events.Action;
import io.saeguard.topics.events.Decision;
import io.saeguard.topics.events.EventCodec;
import io.saeguard.topics.events.JudgeRequest;
import io.saeguard.topics.events.JudgeVerdict;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Random;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.header.Header;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The judge cascade against a real broker (issue 20, item 4), with exactly-once delivery: the planted detector's only
 * band escalates every request at its first chunk. Invariants: an escalated request's judge request is on
 * {@code saeguard.judge}, and the judge's verdict becomes its next decision (next seq, the judge's reason) exactly once; a
 * silent judge gives the band's fallback once the timeout passed; a verdict for a request with no pending escalation
 * (unknown, or already fallen back) is dead-lettered with its judge-stage reason. The test itself plays the judge.
 */
@ExtendWith(KafkaBrokerExtension.class)
class JudgeCascadeIT {
    private static final long SEED = new Random().nextLong() & 0x7fffffffL;
    private static final EventCodec CODEC = new EventCodec();
    /** Long enough for the test to answer a judge request on a loaded CI machine; the silent-judge test waits it out. */
    private static final long TIMEOUT_MS = 6_000;

    @TempDir
    static Path dir;

    private static Scenario s;
    private static Sidecar sidecar;

    @BeforeAll
    static void start(KafkaBroker kafka) throws Exception {
        System.out.println("JudgeCascadeIT seed=" + SEED);
        PythonSaeFixtures.assumeAvailable();
        s = Scenario.create(dir, kafka.bootstrap(), SEED, "delivery: exactly-once\njudge_cascade: true\n");
        Files.writeString(dir.resolve("planted.yaml"), """
                id: %s
                sae: %s
                rule:
                  kind: features
                  features:
                    - id: %d
                      threshold: 1.0
                aggregate: token
                policy:
                  bands:
                    - min: 0.0
                      action: escalate
                      judge_timeout_ms: %d
                      fallback: block
                """.formatted(Scenario.DETECTOR, Scenario.SAE_ID, s.feature, TIMEOUT_MS));
        sidecar = Sidecar.start(s.config());
    }

    @AfterAll
    static void stop() {
        if (sidecar != null) {
            sidecar.close();
        }
    }

    @Test
    void anEscalatedRequestGetsTheJudgesVerdictAsItsNextDecisionExactlyOnce() throws Exception {
        // Given a request whose only chunk escalates
        String request = "req-judged";
        s.produce(s.topic(TopicRole.ACTIVATIONS), request, s.record(request, 0, 0, true));

        // When the judge reads its request and answers allow (the fallback would be block)
        JudgeRequest asked = CODEC.decodeJudgeRequest(Scenario.awaitKey(s.bootstrap, s.topic(TopicRole.JUDGE), request).value());
        s.produce(s.topic(TopicRole.JUDGE_VERDICTS), request, CODEC.encode(new JudgeVerdict(request, asked.detector(), Action.ALLOW,
                "a benign question", Optional.of("stand-in-judge"), OptionalLong.of(System.currentTimeMillis()))));

        // Then the request for judgement described the escalating decision
        assertThat(asked.detector()).isEqualTo(Scenario.DETECTOR);
        assertThat(asked.seq()).isZero();
        assertThat(asked.timeoutMs()).isEqualTo(TIMEOUT_MS);
        assertThat(asked.fallback()).isEqualTo(Action.BLOCK);
        assertThat(asked.excerpt()).as("an activation record carries no text").isEmpty();

        // And the request's decisions are the escalating flag, then the judge's allow at the next seq, once each
        List<Decision> decisions = awaitDecisions(request, 2);
        assertThat(decisions.get(0).action()).isEqualTo(Action.FLAG);
        assertThat(decisions.get(0).reason()).hasValueSatisfying(r -> assertThat(r).contains("escalated to the judge"));
        assertThat(decisions.get(1).seq()).isEqualTo(1);
        assertThat(decisions.get(1).action()).isEqualTo(Action.ALLOW);
        assertThat(decisions.get(1).detector()).contains(Scenario.DETECTOR);
        assertThat(decisions.get(1).reason()).contains("judge stand-in-judge: a benign question");
        // And past the timeout a settled escalation does not fall back as well
        Awaitility.await().during(Duration.ofMillis(TIMEOUT_MS + 1_000)).atMost(Duration.ofMillis(TIMEOUT_MS + 30_000))
                .pollInterval(Duration.ofMillis(1_000)).until(() -> decisionsOf(request).size() == 2);
    }

    @Test
    void aSilentJudgeGivesTheFallbackAtTheTimeoutAndALateVerdictIsDeadLettered() throws Exception {
        // Given a request whose only chunk escalates
        String request = "req-unanswered";
        s.produce(s.topic(TopicRole.ACTIVATIONS), request, s.record(request, 4, 0, true));
        Scenario.awaitKey(s.bootstrap, s.topic(TopicRole.JUDGE), request);

        // When the judge never answers, the fallback arrives; then the judge answers after all
        List<Decision> decisions = awaitDecisions(request, 2);
        s.produce(s.topic(TopicRole.JUDGE_VERDICTS), request, CODEC.encode(new JudgeVerdict(request, Scenario.DETECTOR, Action.ALLOW,
                "too late", Optional.empty(), OptionalLong.empty())));

        // Then the second decision is the band's fallback, made no sooner than the timeout after the first
        assertThat(decisions.get(1).seq()).isEqualTo(1);
        assertThat(decisions.get(1).action()).isEqualTo(Action.BLOCK);
        assertThat(decisions.get(1).reason()).contains("no judge verdict within " + TIMEOUT_MS + " ms: fallback block");
        assertThat(decisions.get(1).ts().getAsLong() - decisions.get(0).ts().getAsLong()).isGreaterThanOrEqualTo(TIMEOUT_MS);

        // And the late verdict is a dead letter of the judge stage, not a third decision
        ConsumerRecord<String, byte[]> dead = Scenario.awaitKey(s.bootstrap, s.topic(TopicRole.DEADLETTER), request);
        assertThat(header(dead, "stage")).isEqualTo("judge");
        assertThat(header(dead, "reason")).isEqualTo("late_verdict");
        assertThat(decisionsOf(request)).hasSize(2);
    }

    @Test
    void aVerdictForAnUnknownRequestIsDeadLettered() throws Exception {
        // When a verdict arrives for a request nothing escalated
        String request = "req-never-escalated";
        byte[] verdict = CODEC.encode(new JudgeVerdict(request, Scenario.DETECTOR, Action.BLOCK, "?", Optional.empty(), OptionalLong.empty()));
        s.produce(s.topic(TopicRole.JUDGE_VERDICTS), request, verdict);

        // Then it is on the dead-letter topic, as it was, with the judge stage and reason, and no decision names the request
        ConsumerRecord<String, byte[]> dead = Scenario.awaitKey(s.bootstrap, s.topic(TopicRole.DEADLETTER), request);
        assertThat(dead.value()).isEqualTo(verdict);
        assertThat(header(dead, "stage")).isEqualTo("judge");
        assertThat(header(dead, "reason")).isEqualTo("unknown_request");
        assertThat(header(dead, "topic")).isEqualTo(s.topic(TopicRole.JUDGE_VERDICTS));
        assertThat(decisionsOf(request)).isEmpty();
    }

    private static List<Decision> awaitDecisions(String request, int count) throws Exception {
        Awaitility.await().atMost(Duration.ofSeconds(90)).pollInterval(Duration.ofMillis(500))
                .until(() -> decisionsOf(request).size() >= count);
        return decisionsOf(request);
    }

    private static List<Decision> decisionsOf(String request) throws Exception {
        List<Decision> out = new ArrayList<>();
        for (ConsumerRecord<String, byte[]> r : s.readToEnd(TopicRole.DECISIONS)) {
            if (request.equals(r.key())) {
                out.add(CODEC.decodeDecision(r.value()));
            }
        }
        out.sort(Comparator.comparingLong(Decision::seq));
        return out;
    }

    private static String header(ConsumerRecord<String, byte[]> r, String key) {
        Header h = r.headers().lastHeader(DeadLetterPublisher.PREFIX + key);
        return h == null ? null : new String(h.value(), StandardCharsets.UTF_8);
    }
}
