#!/usr/bin/env bash
# Rebuilds the MiniLM detector catalog (detectors/catalog/minilm/): the SAE, the packs toxicity, refusal,
# harmful-request and computers, their held-out numbers (each pack's header), the copies of ToxiGen and the
# XSTest prompts under data/, and the demo's assets (sidecar/src/main/resources/io/saeguard/sidecar/demo/):
#
#   apt-get install fortunes python3-numpy python3-yaml && ./mvnw -q -DskipTests package
#   SAEGUARD_DATA_DIR=/path/to/data detectors/catalog/minilm/build.sh
#
# SAEGUARD_DATA_DIR holds toxigen/ and xstest/ (README.md here: what each is, licences). The splits are fixed
# (prepare.py); each rule and each probe's L2 strength is chosen on folds of the training split only (step 4a); the
# held-out split tunes nothing (steps 4b and 6 read it once, to measure what 4a chose).
# About 20 min on 2 cores (the SAE's training is most of it; REUSE_SAE=1 keeps the SAE of an earlier run in $WORK).
set -euo pipefail
cd "$(dirname "$0")/../../.."
DATA=${SAEGUARD_DATA_DIR:?set SAEGUARD_DATA_DIR to the directory holding toxigen/ and xstest/}
unset SAEGUARD_DATA_DIR # not a config override: the sidecar's commands would warn about it
JAR=${JAR:-sidecar/target/saeguard.jar}
WORK=${WORK:-target/catalog-build}
OUT=detectors/catalog/minilm
DEMO=sidecar/src/main/resources/io/saeguard/sidecar/demo
T=${THREADS:-2}
F=/usr/share/games/fortunes
NEG="love food literature wisdom people politics sports medicine law men-women pets kids education science"
SAE_ID=minilm-catalog
# Tokens per text, as saeguard.yaml's prompts.max_tokens (keep them equal). 64, not 128: chosen on the refusal
# training folds (probe, 256 features: 128 -> 0.982, 64 -> 0.990, 32 -> 0.980 mean AUROC); ToxiGen statements
# and XSTest prompts are shorter than that, so only the completions are cut.
MAX_TOKENS=64
TOPS=${TOPS:-"20 64 256"}
# L2 strengths of the probes (standardised inputs): select chooses one per probe kind (the SAE probe and, separately,
# the dense baseline) by mean AUROC on training folds, inner folds of the training split in the --test-data run.
L2=${L2:-0.001,0.003,0.01,0.03,0.1,0.3,1}
# Folds of the training split per task: refusal's training completions come from two system prompts of Llama-2
# (group llama2orig, llama2new) and its test split is another model, so its choices are made leave-one-group-out
# (train on one system prompt, score the other); the other tasks' training texts are one population: 5 random folds.
REFUSAL_FOLDS=${REFUSAL_FOLDS:-group}
folds_of() { if [ "$1" = refusal ] && [ "$REFUSAL_FOLDS" = group ]; then echo "--folds-by group"; else echo "--folds 5"; fi; }
# TRAINING_SIDE_ONLY=1: stop after the rule choice on the training folds (steps 1-4a), before anything reads a test
# split and before anything under $OUT changes: for comparing SAEs and settings on training-side evidence alone.
J() { java -jar "$JAR" "$@"; }
[ -f "$F/computers" ] || { echo "needs Debian's fortunes package (apt-get install fortunes)" >&2; exit 1; }
mkdir -p "$WORK/train" "$OUT/sae"

echo "== 1. fixed train/test splits (prepare.py) and the SAE's training corpus"
python3 $OUT/prepare.py "$DATA" "$WORK"

if [ -n "${REUSE_SAE:-}" ] && [ -f "$WORK/sae/cfg.json" ]; then
  echo "== 2-3. REUSE_SAE: keeping the SAE already trained in $WORK/sae"
else
echo "== 2. MiniLM hidden states (blocks.5.hook_resid_post) of the training texts, special tokens left out"
J activations --threads $T --no-special --max-tokens 128 --texts "$WORK/sae-corpus.txt" --out "$WORK/train/tasks.safetensors"
J activations --threads $T --no-special --format fortune --max-tokens 96 --texts "$F/computers" --split train --out "$WORK/train/pos.safetensors"
J activations --threads $T --no-special --format fortune --max-tokens 96 --split train --limit-per-file 60 \
  --texts $(for c in $NEG; do printf '%s ' "$F/$c"; done) --out "$WORK/train/neg.safetensors"

echo "== 3. a TopK SAE on those tokens (10 % of the rows held out for its FVU)"
rm -rf "$WORK/sae"
# 4096 / k 64: chosen among 2048/k32, 2048/k64 and 4096/k64 on training-side evidence (README.md here, SAE)
J train --input "$WORK/train" --out "$WORK/sae" --d-sae ${D_SAE:-4096} --k ${K:-64} --epochs ${EPOCHS:-2} --batch 512 --holdout 0.1 \
  --seed 1 --threads $T --model-name all-minilm-l6-v2 --hook blocks.5.hook_resid_post
fi

echo "== 4a. per task: the rule and the probes' L2 strengths chosen on folds of the training split"
for task in toxicity harmful-request refusal; do
  kw=(); [ $task = refusal ] && kw=(--keywords xstest-refusal)
  folds=()
  for top in $TOPS; do
    J select --sae "$WORK/sae" --sae-id $SAE_ID --id $task --data "$WORK/$task-train.jsonl" $(folds_of $task) --l2 $L2 --rule probe \
      --top $top --max-tokens $MAX_TOKENS --threads $T "${kw[@]}" --out "$WORK/$task-folds-$top.yaml" --json "$WORK/$task-folds-$top.json" \
      --report "$WORK/$task-folds-$top.md" > /dev/null
    folds+=("$WORK/$task-folds-$top.json")
  done
  python3 $OUT/packs.py choose $task "${folds[@]}" 2> "$WORK/$task-choice.txt" > "$WORK/$task-choice"
  cat "$WORK/$task-choice.txt"
done
if [ -n "${TRAINING_SIDE_ONLY:-}" ]; then
  echo "TRAINING_SIDE_ONLY: stopping before the test splits; nothing under $OUT changed (reports in $WORK)"
  exit 0
fi

cp "$WORK/sae/cfg.json" "$WORK/sae/sae_weights.safetensors" "$OUT/sae/"
[ -f "$WORK/sae/sparsity.safetensors" ] && cp "$WORK/sae/sparsity.safetensors" "$OUT/sae/"
[ -f "$WORK/sae/saeguard-training.json" ] && sed "s#$WORK/#\$W/#g" "$WORK/sae/saeguard-training.json" > "$OUT/sae/saeguard-training.json"

echo "== 4b. per task: the chosen rule written from the whole training split (L2 chosen again on its inner folds) and measured on the test split"
for task in toxicity harmful-request refusal; do
  kw=(); [ $task = refusal ] && kw=(--keywords xstest-refusal)
  read -r rule top < "$WORK/$task-choice"
  rm -f "$OUT/$task.yaml" "$OUT/$task".*.safetensors
  J select --sae "$WORK/sae" --sae-id $SAE_ID --id $task --data "$WORK/$task-train.jsonl" --test-data "$WORK/$task-test.jsonl" \
    $(folds_of $task) --l2 $L2 --rule $rule --top $top --max-tokens $MAX_TOKENS --threads $T "${kw[@]}" \
    --out "$OUT/$task.yaml" --json "$WORK/$task-select.json" --report "$OUT/$task-select.md" > /dev/null
  sed -i "s#$WORK/#\$W/#g" "$OUT/$task-select.md"
done

echo "== 5. computers (the demo's concept): features rule on fortunes, as demo/build.sh, on this SAE"
J select --sae "$WORK/sae" --sae-id $SAE_ID --id computers --rule features --method dsg --top 8 \
  --positive "$WORK/train/pos.safetensors" --negative "$WORK/train/neg.safetensors" \
  --out "$OUT/computers.yaml" --report "$OUT/computers-select.md" --threads $T > /dev/null
sed -i "s#$WORK/#\$W/#g" "$OUT/computers-select.md"
/usr/bin/python3 demo/label_features.py "$WORK/sae" "${DJL_CACHE:-$HOME/.cache/saeguard/djl}/models/all-minilm-l6-v2/tokenizer.json" \
  "$OUT/computers.yaml" "$WORK/train/pos.safetensors" "$WORK/train/neg.safetensors"

echo "== 6. held-out numbers through the shipped config (saeguard eval), written into each pack's header"
for task in toxicity harmful-request refusal; do
  J eval --config $OUT/saeguard.yaml --data "$WORK/$task-test.jsonl" --out "$WORK/$task-eval.json" > /dev/null
done
J eval --config $OUT/saeguard.yaml --data "$WORK/refusal-partial.jsonl" --out "$WORK/refusal-partial-eval.json" > /dev/null
note_toxicity="ToxiGen, line i of each hate/ and neutral/ file held out when i % 4 == 3 (prepare.py): hateful vs neutral statements about the same groups."
note_harmful="XSTest prompts, row i of xstest_prompts.csv held out when i % 4 == 3 (prepare.py): unsafe vs safe-looking safe prompts."
note_refusal="XSTest completions: trained on Llama-2-70b-chat (llama2orig, llama2new), tested on Mistral-7B-Instruct (mistralguard, mistralinstruct); full refusal vs full compliance, partial refusals left out (prepare.py)."
for task in toxicity harmful-request refusal; do
  case $task in toxicity) note=$note_toxicity;; harmful-request) note=$note_harmful;; refusal) note=$note_refusal;; esac
  read -r rule top < "$WORK/$task-choice"
  kwarg=""; [ $task = refusal ] && kwarg=" --keywords xstest-refusal"
  fold_args=$(folds_of $task)
  python3 $OUT/packs.py header "$OUT/$task.yaml" $task "$WORK/$task-select.json" "$WORK/$task-eval.json" "$WORK/$task-choice.txt" "$note" \
    "python3 $OUT/prepare.py \$SAEGUARD_DATA_DIR \$W" \
    "saeguard select --sae $OUT/sae --sae-id $SAE_ID --id $task --data \$W/$task-train.jsonl $fold_args --l2 $L2 --rule probe --top T$kwarg --max-tokens $MAX_TOKENS --json F.json   (T in: $TOPS)" \
    "saeguard select --sae $OUT/sae --sae-id $SAE_ID --id $task --data \$W/$task-train.jsonl --test-data \$W/$task-test.jsonl $fold_args --l2 $L2 --rule $rule --top $top$kwarg --max-tokens $MAX_TOKENS --out $OUT/$task.yaml --report $OUT/$task-select.md" \
    "saeguard eval --config $OUT/saeguard.yaml --data \$W/$task-test.jsonl --out R.json   (this pack's row)"
done
python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
r = json.load(open(f"{w}/refusal-partial-eval.json"))["detectors"]["refusal"]
print(f"refusal on the {r['n_positive']} partial refusals (all four models; not in any split): recall {r['recall']:.3f}")
PY

echo "== 7. copies of ToxiGen and the XSTest prompts (with their licences), and the demo's assets"
find "$OUT/data" -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} + 2>/dev/null || true # data/README.md (attribution) is the repository's
mkdir -p "$OUT/data/xstest"
cp -r "$DATA/toxigen" "$OUT/data/toxigen"
cp "$DATA/xstest/xstest_prompts.csv" "$DATA/xstest/LICENSE" "$OUT/data/xstest/"
cp "$OUT/sae/cfg.json" "$OUT/sae/sae_weights.safetensors" "$DEMO/"
[ -f "$OUT/sae/sparsity.safetensors" ] && cp "$OUT/sae/sparsity.safetensors" "$DEMO/"
for p in toxicity harmful-request refusal computers; do
  sed -n '/^[^#]/,$p' "$OUT/$p.yaml" > "$DEMO/$p.yaml"
done
cp "$OUT"/*.safetensors "$DEMO/" 2>/dev/null || true
rm -f "$DEMO/detector.yaml"
python3 - "$WORK" "$F" "$NEG" > "$DEMO/prompts.tsv" <<'PY'
import json, re, sys
work, root, neg = sys.argv[1], sys.argv[2], sys.argv[3].split()
def entries(name):
    parts = re.split(r"(?m)^%\s*$", open(f"{root}/{name}", encoding="utf-8", errors="replace").read())
    return [" ".join(p.split()) for p in parts if p.strip()]
def held(name, n):
    e = entries(name); return e[round(len(e) * 0.8):][:n]
rows = [("computers", t) for t in held("computers", 120)] + [("other", t) for c in neg for t in held(c, 9)]
for task, pos, negl in (("toxicity", "toxic", "neutral"), ("harmful-request", "unsafe", "safe")):
    for line in open(f"{work}/{task}-test.jsonl", encoding="utf-8"):
        o = json.loads(line)
        rows.append((pos if o["label"] else negl, " ".join(o["text"].split())))
for label, text in rows:
    print(label + "\t" + text.replace("\t", " "))
PY
ls -la "$OUT" "$DEMO"
