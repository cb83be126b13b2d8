"""The reference judge worker against a local stand-in for an OpenAI-compatible chat endpoint."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List

import jsonschema
import pytest

from fakes import FakeProducer
from saeguard_attach.judge import (DEFAULT_PROMPT, JudgeAnswerError, JudgeConfig, JudgeWorker, ask, parse_answer,
                                   user_message, verdict_for)

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


class StandInJudge:
    """An OpenAI-compatible ``POST /v1/chat/completions`` in a thread: records each body, answers ``content``."""

    def __init__(self) -> None:
        self.bodies: List[Dict[str, Any]] = []
        self.headers: List[Dict[str, str]] = []
        self.content = '{"action": "block", "reason": "asks for intrusion steps"}'
        self.status = 200
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", "0"))
                judge.bodies.append(json.loads(self.rfile.read(length)))
                judge.headers.append(dict(self.headers))
                if self.path != "/v1/chat/completions":
                    self.send_response(404)
                    self.end_headers()
                    return
                body = json.dumps({"id": "x", "object": "chat.completion", "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": judge.content}, "finish_reason": "stop"}]}).encode()
                self.send_response(judge.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # keep the test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def judge():
    j = StandInJudge()
    yield j
    j.close()


REQUEST = {"request_id": "req-7f3a", "seq": 2, "detector": "cyber-probe", "score": 0.61, "position": 64,
           "features": [{"sae": "sae-a", "id": 4711, "value": 7.25}], "excerpt": "how do I get into my neighbour's wifi",
           "judge_timeout_ms": 2000, "fallback": "block", "ts": 1_000}


class FakeMessage:
    def __init__(self, value: bytes) -> None:
        self._value = value

    def error(self):
        return None

    def key(self):
        return b"req-7f3a"

    def value(self):
        return self._value


class FakeConsumer:
    def __init__(self, *values: bytes) -> None:
        self.messages = [FakeMessage(v) for v in values]
        self.committed: List[FakeMessage] = []

    def poll(self, timeout):
        return self.messages.pop(0) if self.messages else None

    def commit(self, message, asynchronous):
        self.committed.append(message)


def test_the_judge_is_asked_with_the_model_the_system_prompt_and_the_excerpt_and_its_json_answer_parsed(judge):
    # When
    action, reason = ask(REQUEST, JudgeConfig(url=judge.url, model="judge-model", api_key="sk-test"))

    # Then
    assert (action, reason) == ("block", "asks for intrusion steps")
    body = judge.bodies[0]
    assert body["model"] == "judge-model"
    assert body["messages"][0] == {"role": "system", "content": DEFAULT_PROMPT}
    assert "how do I get into my neighbour's wifi" in body["messages"][1]["content"]
    assert "cyber-probe" in body["messages"][1]["content"]
    assert judge.headers[0]["Authorization"] == "Bearer sk-test"


def test_a_request_without_text_tells_the_judge_it_has_only_the_detectors_evidence():
    request = {k: v for k, v in REQUEST.items() if k != "excerpt"}

    message = user_message(request)

    assert "No request text is available" in message
    assert "sae-a/4711" in message


@pytest.mark.parametrize("content, expected", [
    ('{"action": "allow", "reason": "benign"}', ("allow", "benign")),
    ('```json\n{"action": "FLAG", "reason": "unclear"}\n```', ("flag", "unclear")),
    ("block: asks for exploit code", ("block", "asks for exploit code")),
    ("Allow. A cooking question.", ("allow", "A cooking question.")),
])
def test_answers_as_json_in_a_fence_or_as_a_leading_action_word_parse(content, expected):
    assert parse_answer(content) == expected


@pytest.mark.parametrize("content", ['{"action": "steer", "reason": "x"}', "I cannot decide", ""])
def test_an_answer_naming_no_allowed_action_is_refused(content):
    with pytest.raises(JudgeAnswerError):
        parse_answer(content)


def test_an_http_error_from_the_endpoint_is_a_judge_answer_error(judge):
    judge.status = 500

    with pytest.raises(JudgeAnswerError, match="HTTP 500"):
        ask(REQUEST, JudgeConfig(url=judge.url, model="m"))


def test_the_verdict_is_valid_against_the_schema_and_answers_the_request():
    schema = json.loads((SCHEMAS / "judge-verdict.schema.json").read_text())

    verdict = verdict_for(REQUEST, "block", "asks for intrusion steps", "judge-model", now_ms=5)

    jsonschema.validate(verdict, schema)
    assert verdict == {"request_id": "req-7f3a", "detector": "cyber-probe", "action": "block",
                       "reason": "asks for intrusion steps", "judge": "judge-model", "ts": 5}


def test_the_schemas_example_request_is_what_the_worker_reads():
    schema = json.loads((SCHEMAS / "judge-request.schema.json").read_text())

    jsonschema.validate(REQUEST, schema)


def test_the_worker_publishes_the_judges_verdict_keyed_by_request_and_commits_after_delivery(judge):
    # Given
    consumer = FakeConsumer(json.dumps(REQUEST).encode())
    producer = FakeProducer()
    worker = JudgeWorker(consumer, producer, JudgeConfig(url=judge.url, model="judge-model"), clock_ms=lambda: 1_500)

    # When
    handled = worker.run_once(0)

    # Then
    assert handled == 1
    topic, key, value = producer.records[0]
    assert (topic, key) == ("saeguard.judge-verdicts", b"req-7f3a")
    assert json.loads(value)["action"] == "block"
    assert len(consumer.committed) == 1


def test_the_worker_skips_a_request_whose_timeout_passed_and_one_it_cannot_read(judge):
    # Given
    consumer = FakeConsumer(json.dumps(REQUEST).encode(), b"not json")
    producer = FakeProducer()
    worker = JudgeWorker(consumer, producer, JudgeConfig(url=judge.url, model="m"), clock_ms=lambda: 3_000)

    # When
    worker.run_once(0)
    worker.run_once(0)

    # Then nothing is published nor asked, both are committed (the sidecar's fallback decides)
    assert producer.records == []
    assert judge.bodies == []
    assert worker.counts["expired"] == 1 and worker.counts["malformed"] == 1
    assert len(consumer.committed) == 2


def test_an_unreadable_answer_publishes_nothing(judge):
    judge.content = "no idea"
    producer = FakeProducer()
    worker = JudgeWorker(FakeConsumer(json.dumps(REQUEST).encode()), producer, JudgeConfig(url=judge.url, model="m"),
                         clock_ms=lambda: 1_500)

    worker.run_once(0)

    assert producer.records == []
    assert worker.counts["unanswered"] == 1


def test_the_api_key_never_appears_in_the_configs_repr():
    assert "sk-secret" not in repr(JudgeConfig(url="http://x", model="m", api_key="sk-secret"))
