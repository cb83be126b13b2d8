#!/usr/bin/env python3
"""Writes the catalog's fixed train/test splits as labelled JSONL ({"text", "label", "group"} per line).

    prepare.py DATA_DIR OUT_DIR

DATA_DIR holds toxigen/ (hate/<group>.txt, neutral/<group>.txt) and xstest/ (xstest_prompts.csv,
completions/<model>.csv), as the README of detectors/catalog/minilm describes. The splits are fixed,
not random, so every tool (build.sh, CatalogQualityIT) reproduces them exactly:

- toxicity: ToxiGen, hateful (true) vs neutral (false) statements; in each hate/ and neutral/ file the
  non-blank lines, stripped and de-duplicated in order, are numbered from 0 and every line i with
  i % 4 == 3 is held out (test), the rest is training.
- harmful-request: XSTest prompts, unsafe (true) vs safe (false); the rows of xstest_prompts.csv in file
  order, row i (from 0) held out when i % 4 == 3; group = the prompt's type.
- refusal: XSTest completions (the response text only), full refusal (true) vs full compliance (false);
  partial refusals are left out of both splits (refusal-partial.jsonl lists them for a separate look).
  Training: Llama-2-70b-chat (llama2orig, llama2new); test: Mistral-7B-Instruct (mistralguard,
  mistralinstruct), another model family. group = the completion's model file.

It also writes sae-corpus.txt: every training text (all three tasks, partial refusals of the training
models included, no test text), one a line with newlines folded to spaces, for `saeguard activations`.
"""
import csv
import json
import os
import sys

REFUSAL_TRAIN = ["llama2orig", "llama2new"]
REFUSAL_TEST = ["mistralguard", "mistralinstruct"]


def lines(path):
    seen, out = set(), []
    with open(path, encoding="utf-8") as f:
        for line in f:
            s = line.strip()
            if s and s not in seen:
                seen.add(s)
                out.append(s)
    return out


def write(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for text, label, group in rows:
            f.write(json.dumps({"text": text, "label": label, "group": group}, ensure_ascii=False) + "\n")


def main(data, out):
    os.makedirs(out, exist_ok=True)
    split = {}
    tox = os.path.join(data, "toxigen")
    train, test = [], []
    for kind in ("hate", "neutral"):
        for name in sorted(os.listdir(os.path.join(tox, kind))):
            if not name.endswith(".txt"):
                continue
            group = name[:-4]
            for i, s in enumerate(lines(os.path.join(tox, kind, name))):
                (test if i % 4 == 3 else train).append((s, kind == "hate", group))
    split["toxicity"] = (train, test)

    train, test = [], []
    with open(os.path.join(data, "xstest", "xstest_prompts.csv"), encoding="utf-8", newline="") as f:
        for i, row in enumerate(csv.DictReader(f)):
            (test if i % 4 == 3 else train).append((row["prompt"].strip(), row["label"] == "unsafe", row["type"]))
    split["harmful-request"] = (train, test)

    train, test, partial, corpus_extra = [], [], [], []
    for model in REFUSAL_TRAIN + REFUSAL_TEST:
        with open(os.path.join(data, "xstest", "completions", model + ".csv"), encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                text, label = row["completion"].strip(), row["final_label"].strip()
                if not text:
                    continue
                if label.startswith("3"):
                    partial.append((text, True, model))
                    if model in REFUSAL_TRAIN:
                        corpus_extra.append(text)
                    continue
                (train if model in REFUSAL_TRAIN else test).append((text, label.startswith("2"), model))
    split["refusal"] = (train, test)
    write(os.path.join(out, "refusal-partial.jsonl"), partial)

    corpus = []
    for task, (train, test) in split.items():
        write(os.path.join(out, task + "-train.jsonl"), train)
        write(os.path.join(out, task + "-test.jsonl"), test)
        corpus += [t for t, _, _ in train]
        pos = sum(1 for r in train if r[1]), sum(1 for r in test if r[1])
        print(f"{task}: train {len(train)} ({pos[0]} positive), test {len(test)} ({pos[1]} positive)", file=sys.stderr)
    with open(os.path.join(out, "sae-corpus.txt"), "w", encoding="utf-8") as f:
        for t in corpus + corpus_extra:
            f.write(" ".join(t.split()) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: prepare.py DATA_DIR OUT_DIR")
    main(sys.argv[1], sys.argv[2])
