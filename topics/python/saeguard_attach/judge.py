"""A reference judge worker for saeguard's judge cascade.

A detector band with ``action: escalate`` makes the sidecar publish a request for judgement to
``saeguard.judge`` (``topics/schemas/judge-request.schema.json``). This worker reads those
requests, asks an OpenAI-compatible chat endpoint (``POST {url}/v1/chat/completions``) with a
system prompt and what the request carries (detector, score, features, the text excerpt when the
event had text), parses the answer to an action (allow, flag or block) and a reason, and publishes
the verdict to ``saeguard.judge-verdicts`` (``judge-verdict.schema.json``) keyed by the request id.
The sidecar turns it into the request's next decision; without a verdict within the band's
``judge_timeout_ms`` it applies the band's fallback instead, so this worker skips requests whose
timeout has already passed and publishes nothing when the judge cannot be asked or its answer
cannot be read.

Run it::

    python -m saeguard_attach.judge --bootstrap localhost:9092 --url http://localhost:8000 \\
        --model gpt-4o-mini [--prompt-file judge-prompt.txt] [--api-key-env OPENAI_API_KEY]

Prompt text and excerpts are never logged; the API key is read from the environment, never from
the command line, and never logged.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

__all__ = ["DEFAULT_PROMPT", "JudgeAnswerError", "JudgeConfig", "JudgeWorker", "ask", "main", "parse_answer",
           "user_message", "verdict_for"]

LOGGER = logging.getLogger(__name__)

ACTIONS = ("allow", "flag", "block")

DEFAULT_PROMPT = (
    "You are a safety judge for an LLM service. A fast activation-based detector flagged a request as "
    "uncertain and asks for your judgement. Decide whether the request may continue (allow), may continue "
    "but must be recorded for review (flag), or must be stopped (block). Answer with one JSON object and "
    'nothing else: {"action": "allow" | "flag" | "block", "reason": "<one short sentence>"}.'
)


class JudgeAnswerError(Exception):
    """The judge could not be asked, or its answer names no action."""


@dataclass(frozen=True)
class JudgeConfig:
    """Where and how to ask the judge.

    ``url`` is the endpoint's base (``/v1/chat/completions`` is appended); ``api_key``, when
    given, is sent as a bearer token and never appears in ``repr``.
    """

    url: str
    model: str
    system_prompt: str = DEFAULT_PROMPT
    api_key: Optional[str] = None
    timeout_s: float = 30.0

    def __repr__(self) -> str:
        return "JudgeConfig(url=%r, model=%r, api_key=%s, timeout_s=%r)" % (
            self.url, self.model, "<set>" if self.api_key else None, self.timeout_s)


def user_message(request: Mapping[str, Any]) -> str:
    """What the judge is told about one request for judgement."""
    lines = ["Detector: %s" % request["detector"]]
    if "score" in request:
        lines.append("Detector score: %.4g" % request["score"])
    features = request.get("features") or []
    if features:
        lines.append("Strongest SAE features: " + ", ".join("%s/%d=%.3g" % (f["sae"], f["id"], f["value"]) for f in features))
    excerpt = request.get("excerpt")
    if excerpt is not None:
        lines.append("Request text:\n<<<\n%s\n>>>" % excerpt)
    else:
        lines.append("No request text is available (the detector saw activations only); judge from the evidence above.")
    return "\n".join(lines)


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)
_PREFIX = re.compile(r"^\s*(allow|flag|block)\b[\s:.\-]*(.*)$", re.IGNORECASE | re.DOTALL)


def parse_answer(content: str) -> Tuple[str, str]:
    """The action and reason in the judge's answer.

    Accepts the JSON object the default prompt asks for (also inside a Markdown code fence), or a
    plain answer starting with the action word (``block: asks for exploit code``).

    Raises:
        JudgeAnswerError: the answer names none of allow, flag, block.
    """
    text = _FENCE.sub("", content.strip()).strip()
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        action = str(obj.get("action", "")).strip().lower()
        if action in ACTIONS:
            return action, str(obj.get("reason", "")).strip()
        raise JudgeAnswerError("the judge's JSON answer has action %r; expected one of %s" % (obj.get("action"), "|".join(ACTIONS)))
    m = _PREFIX.match(text)
    if m:
        return m.group(1).lower(), m.group(2).strip()
    raise JudgeAnswerError("the judge's answer names no action (expected JSON with one of %s)" % "|".join(ACTIONS))


def ask(request: Mapping[str, Any], config: JudgeConfig,
        opener: Callable[..., Any] = urllib.request.urlopen) -> Tuple[str, str]:
    """Asks the judge about one request for judgement; returns (action, reason).

    Raises:
        JudgeAnswerError: the endpoint failed or answered something unreadable.
    """
    body = json.dumps({
        "model": config.model,
        "temperature": 0,
        "messages": [
            {"role": "system", "content": config.system_prompt},
            {"role": "user", "content": user_message(request)},
        ],
    }).encode("utf-8")
    headers = {"Content-Type": "application/json"}
    if config.api_key:
        headers["Authorization"] = "Bearer " + config.api_key
    http = urllib.request.Request(config.url.rstrip("/") + "/v1/chat/completions", data=body, headers=headers, method="POST")
    try:
        with opener(http, timeout=config.timeout_s) as response:
            answer = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        raise JudgeAnswerError("the judge endpoint answered HTTP %d" % e.code) from e
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise JudgeAnswerError("the judge endpoint could not be asked: %s" % e) from e
    try:
        content = answer["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as e:
        raise JudgeAnswerError("the judge endpoint's answer has no choices[0].message.content") from e
    if not isinstance(content, str):
        raise JudgeAnswerError("the judge endpoint's message content is not text")
    return parse_answer(content)


def verdict_for(request: Mapping[str, Any], action: str, reason: str, judge: str,
                now_ms: Optional[int] = None) -> Dict[str, Any]:
    """The verdict record's value (``judge-verdict.schema.json``) answering ``request``."""
    if action not in ACTIONS:
        raise ValueError("action must be one of %s, got %r" % ("|".join(ACTIONS), action))
    verdict = {"request_id": request["request_id"], "detector": request["detector"], "action": action, "reason": reason,
               "ts": int(time.time() * 1000) if now_ms is None else int(now_ms)}
    if judge:
        verdict["judge"] = judge
    return verdict


def _parse_request(value: Optional[bytes]) -> Dict[str, Any]:
    if value is None:
        raise ValueError("no value")
    obj = json.loads(value.decode("utf-8"))
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    for field in ("request_id", "detector", "judge_timeout_ms", "ts"):
        if field not in obj:
            raise ValueError("missing %s" % field)
    return obj


class JudgeWorker:
    """Consumes requests for judgement, asks the judge, publishes verdicts.

    ``consumer`` and ``producer`` are confluent-kafka clients (or stand-ins with the same calls);
    the consumer is already subscribed. Offsets are committed only after the verdict was
    delivered (or the request was skipped), so a crash asks again rather than loses a request.
    Single-threaded: :meth:`run_once` and :meth:`run` on one thread.
    """

    def __init__(self, consumer: Any, producer: Any, config: JudgeConfig, verdicts_topic: str = "saeguard.judge-verdicts",
                 ask_judge: Callable[[Mapping[str, Any], JudgeConfig], Tuple[str, str]] = ask,
                 clock_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self._consumer = consumer
        self._producer = producer
        self._config = config
        self._topic = verdicts_topic
        self._ask = ask_judge
        self._clock_ms = clock_ms
        self.counts = dict(answered=0, expired=0, malformed=0, unanswered=0)

    def run_once(self, timeout_s: float = 0.5) -> int:
        """Handles what one poll returns; returns how many records it handled."""
        msg = self._consumer.poll(timeout_s)
        if msg is None:
            return 0
        if msg.error():
            LOGGER.warning("consumer error: %s", msg.error())
            return 0
        failures = []
        self.handle(msg.key(), msg.value(), on_delivery=lambda err, _msg: failures.append(err) if err is not None else None)
        self._producer.flush(30)
        if failures:
            # Not committed: the process ends and its restart (or the group's next member) asks again.
            raise RuntimeError("a verdict could not be delivered: %s" % failures[0])
        self._consumer.commit(message=msg, asynchronous=False)
        return 1

    def handle(self, key: Optional[bytes], value: Optional[bytes],
               on_delivery: Optional[Callable[[Any, Any], None]] = None) -> Optional[Dict[str, Any]]:
        """Answers one request for judgement; returns the verdict published, or None."""
        try:
            request = _parse_request(value)
        except (ValueError, UnicodeDecodeError) as e:
            self.counts["malformed"] += 1
            LOGGER.warning("skipping a malformed judge request: %s", e)
            return None
        request_id = request["request_id"]
        if self._clock_ms() >= int(request["ts"]) + int(request["judge_timeout_ms"]):
            self.counts["expired"] += 1
            LOGGER.info("skipping request %s: its judge_timeout_ms passed, the sidecar applied its fallback", request_id)
            return None
        try:
            action, reason = self._ask(request, self._config)
        except JudgeAnswerError as e:
            self.counts["unanswered"] += 1
            LOGGER.warning("no verdict for request %s (the sidecar's fallback applies): %s", request_id, e)
            return None
        verdict = verdict_for(request, action, reason, self._config.model, self._clock_ms())
        self._producer.produce(self._topic, key=request_id.encode("utf-8"), value=json.dumps(verdict).encode("utf-8"),
                               on_delivery=on_delivery)
        self.counts["answered"] += 1
        LOGGER.info("request %s judged %s", request_id, action)
        return verdict

    def run(self, stop: Callable[[], bool] = lambda: False) -> None:
        """Runs until ``stop()`` is true."""
        while not stop():
            self.run_once()


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m saeguard_attach.judge", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--url", required=True, help="base URL of an OpenAI-compatible endpoint (POST {url}/v1/chat/completions)")
    parser.add_argument("--model", required=True, help="the judge model's name, sent with each request and named in verdicts")
    parser.add_argument("--prompt-file", help="the system prompt, from this file (default: a prompt asking for JSON allow|flag|block)")
    parser.add_argument("--api-key-env", help="name of the environment variable holding the endpoint's API key")
    parser.add_argument("--group", default="saeguard-judge", help="consumer group (default saeguard-judge)")
    parser.add_argument("--judge-topic", default="saeguard.judge")
    parser.add_argument("--verdicts-topic", default="saeguard.judge-verdicts")
    parser.add_argument("--timeout-s", type=float, default=30.0, help="HTTP timeout per judgement")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    prompt = DEFAULT_PROMPT
    if args.prompt_file:
        with open(args.prompt_file, encoding="utf-8") as f:
            prompt = f.read()
    api_key = os.environ.get(args.api_key_env) if args.api_key_env else None
    if args.api_key_env and not api_key:
        parser.error("--api-key-env %s: that environment variable is not set" % args.api_key_env)
    config = JudgeConfig(url=args.url, model=args.model, system_prompt=prompt, api_key=api_key, timeout_s=args.timeout_s)

    from confluent_kafka import Consumer, Producer  # imported here: the parsing above needs no Kafka client

    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": args.group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    consumer.subscribe([args.judge_topic])
    producer = Producer({"bootstrap.servers": args.bootstrap, "enable.idempotence": True, "acks": "all"})
    worker = JudgeWorker(consumer, producer, config, args.verdicts_topic)
    LOGGER.info("judging %s with %s at %s, verdicts to %s", args.judge_topic, args.model, args.url, args.verdicts_topic)
    try:
        worker.run()
    except KeyboardInterrupt:
        pass
    finally:
        producer.flush(10)
        consumer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
