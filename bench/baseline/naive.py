#!/usr/bin/python3
"""The straightforward consumer a user would write instead of saeguard: record by record.

poll one record -> decode the safetensors activation record -> torch JumpReLU encode of its tokens
-> threshold rule on one feature -> produce the decision JSON -> commit (asynchronously, right after
producing; it does not wait for the decision to be acknowledged, so this is weaker than saeguard's
at-least-once, and cheaper).

    /usr/bin/python3 bench/baseline/naive.py --bootstrap 127.0.0.1:9092 --activations T --decisions D \
        --sae DIR --detector FILE.yaml [--threads N]

Prints `READY {runtime json}` on stdout once partitions are assigned, `STATS {json}` lines on
stderr; stops on SIGTERM / SIGINT.
"""

import argparse
import time

import torch

import saebaseline as sb


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sb.common_args(p)
    args = p.parse_args()
    sae, det, requests, stats, running, consumer, producer = sb.start(args, "naive")
    while running[0]:
        t0 = time.perf_counter()
        msg = consumer.poll(0.5)
        t1 = time.perf_counter()
        stats.add("poll_s", t1 - t0)
        stats.maybe_print()
        if msg is None:
            continue
        if msg.error():
            print(f"naive: consumer error: {msg.error()}", flush=True)
            continue
        meta, x = sb.decode_record(msg.value())
        x = torch.from_numpy(x.copy())  # the record's bytes are read-only
        t2 = time.perf_counter()
        codes = sae.encode(x)
        t3 = time.perf_counter()
        column = codes[:, det.feature].cpu().numpy()
        position = int(meta.get("position", 0))
        score = det.score(column, position)
        action = det.action(score)
        seq = requests.next(meta["request_id"], meta.get("final") == "true")
        value = sb.decision(meta, seq, det, score, action, msg.timestamp()[1])
        t4 = time.perf_counter()
        producer.produce(args.decisions, key=msg.key(), value=value)
        producer.poll(0)
        t5 = time.perf_counter()
        consumer.commit(message=msg, asynchronous=True)
        t6 = time.perf_counter()
        stats.add("records", 1)
        stats.add("tokens", x.shape[0])
        stats.add("encodes", 1)
        stats.add("decode_s", t2 - t1)
        stats.add("encode_s", t3 - t2)
        stats.add("detect_s", t4 - t3)
        stats.add("produce_s", t5 - t4)
        stats.add("commit_s", t6 - t5)
    producer.flush(10)
    consumer.close()
    stats.maybe_print(force=True)


if __name__ == "__main__":
    main()
