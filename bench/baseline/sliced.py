#!/usr/bin/python3
"""The best consumer a Python user could write by hand: batched.py's poll-batched loop, encoding only
the columns the detector reads.

A JumpReLU code depends only on its own pre-activation (x - b_dec) . W_enc[:, j] + b_enc[j], so a
detector that reads feature j needs that one column, not all d_sae of them: the SAE's W_enc, b_enc
and threshold are sliced to the watched features once at start (a contiguous [d_in, |watched|]
copy), and each poll's stacked tokens go through that small GEMM. Everything else (poll, decode,
detector, decisions, commits) is batched.py's, so the two differ only in the encode.

    /usr/bin/python3 bench/baseline/sliced.py --bootstrap 127.0.0.1:9092 --activations T --decisions D \
        --sae DIR --detector FILE.yaml [--threads N] [--max-records 500] [--max-batch-tokens 512] [--max-delay-ms 5]

Prints `READY {runtime json}` on stdout once partitions are assigned, `STATS {json}` lines on
stderr; stops on SIGTERM / SIGINT.
"""

import batched


def watched_column(sae, det):
    """x -> the detector's feature through the sliced encoder, [n]."""
    sliced = sae.sliced([det.feature])
    return lambda x: sliced.encode(x)[:, 0]


def main():
    batched.run(batched.arguments(__doc__), "sliced", watched_column)


if __name__ == "__main__":
    main()
