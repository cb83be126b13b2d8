#!/usr/bin/python3
"""The careful consumer a user would write instead of saeguard: every record of a poll in one encode.

consume(num_messages=--max-records, timeout=--max-delay-ms) -> decode every record -> stack their
tokens into one [n, d_in] matrix (split into encodes of at most --max-batch-tokens tokens, like
saeguard's max_batch_tokens, so a poll of 500 prompt chunks does not allocate a 2 GB code matrix)
-> one torch JumpReLU encode per stack -> threshold rule per record on its rows -> produce each
decision -> commit the poll asynchronously. One loop, one thread: while it encodes, nothing is
polled or produced.

    /usr/bin/python3 bench/baseline/batched.py --bootstrap 127.0.0.1:9092 --activations T --decisions D \
        --sae DIR --detector FILE.yaml [--threads N] [--max-records 500] [--max-batch-tokens 512] [--max-delay-ms 5]

Prints `READY {runtime json}` on stdout once partitions are assigned, `STATS {json}` lines on
stderr; stops on SIGTERM / SIGINT.
"""

import argparse
import time

import numpy as np
import torch

import saebaseline as sb


def full_column(sae, det):
    """The detector's column of the full code matrix: encode all d_sae features, keep one."""
    return lambda x: sae.encode(x)[:, det.feature]


def arguments(doc):
    p = argparse.ArgumentParser(description=doc.split("\n")[0])
    sb.common_args(p)
    p.add_argument("--max-records", type=int, default=500, help="records per consume() (Kafka's max.poll.records default)")
    p.add_argument("--max-batch-tokens", type=int, default=512, help="most tokens per encode (saeguard's default)")
    p.add_argument("--max-delay-ms", type=float, default=5.0, help="consume() timeout (saeguard's max_delay_ms)")
    return p.parse_args()


def main():
    run(arguments(__doc__), "batched", full_column)


def run(args, kind, column_fn):
    """The poll-batched loop; column_fn(sae, det) returns x [n, d_in] -> the detector's codes [n]."""
    sae, det, requests, stats, running, consumer, producer = sb.start(args, kind)
    column_of = column_fn(sae, det)
    timeout = args.max_delay_ms / 1000.0
    while running[0]:
        t0 = time.perf_counter()
        msgs = consumer.consume(num_messages=args.max_records, timeout=timeout)
        t1 = time.perf_counter()
        stats.add("poll_s", t1 - t0)
        stats.maybe_print()
        if not msgs:
            continue
        decoded = []
        for m in msgs:
            if m.error():
                print(f"batched: consumer error: {m.error()}", flush=True)
                continue
            meta, x = sb.decode_record(m.value())
            decoded.append((m, meta, x))
        stats.add("decode_s", time.perf_counter() - t1)
        start = 0
        while start < len(decoded):
            # Records [start, end): as many as fit in max_batch_tokens (at least one).
            end, tokens = start, 0
            while end < len(decoded) and (end == start or tokens + decoded[end][2].shape[0] <= args.max_batch_tokens):
                tokens += decoded[end][2].shape[0]
                end += 1
            group = decoded[start:end]
            ta = time.perf_counter()
            x = torch.from_numpy(np.concatenate([g[2] for g in group]))  # [tokens, d_in]
            tb = time.perf_counter()
            column = column_of(x).cpu().numpy()
            tc = time.perf_counter()
            values = []
            row = 0
            for m, meta, xr in group:
                n = xr.shape[0]
                position = int(meta.get("position", 0))
                score = det.score(column[row:row + n], position)
                row += n
                action = det.action(score)
                seq = requests.next(meta["request_id"], meta.get("final") == "true")
                values.append((m, sb.decision(meta, seq, det, score, action, m.timestamp()[1])))
            td = time.perf_counter()
            for m, v in values:
                producer.produce(args.decisions, key=m.key(), value=v)
            producer.poll(0)
            te = time.perf_counter()
            stats.add("decode_s", tb - ta)
            stats.add("encode_s", tc - tb)
            stats.add("detect_s", td - tc)
            stats.add("produce_s", te - td)
            stats.add("records", len(group))
            stats.add("tokens", tokens)
            stats.add("encodes", 1)
            start = end
        tf = time.perf_counter()
        consumer.commit(asynchronous=True)
        stats.add("commit_s", time.perf_counter() - tf)
    producer.flush(10)
    consumer.close()
    stats.maybe_print(force=True)


if __name__ == "__main__":
    main()
