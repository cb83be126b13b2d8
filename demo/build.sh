#!/usr/bin/env bash
# Builds the demo's SAE and detector from a real public corpus: Debian's fortunes (BSD fortune(6)
# files, package `fortunes`), through the built-in MiniLM prompt model, and writes the assets that
# `saeguard demo` ships (sidecar/src/main/resources/io/saeguard/sidecar/demo/):
#
#   apt-get install fortunes && ./mvnw -q -DskipTests package && demo/build.sh
#
# Concept: "computers" (/usr/share/games/fortunes/computers) against fortunes on other subjects.
# In every category file the first 80 % of entries are for training, the rest held out.
set -euo pipefail
cd "$(dirname "$0")/.."
JAR=${JAR:-sidecar/target/saeguard.jar}
F=/usr/share/games/fortunes
WORK=${WORK:-target/demo-build}
OUT=sidecar/src/main/resources/io/saeguard/sidecar/demo
NEG="love food literature wisdom people politics sports medicine law men-women pets kids education science"
negs() { for c in $NEG; do printf '%s ' "$F/$c"; done; }
mkdir -p "$WORK/train" "$OUT"
[ -f "$F/computers" ] || { echo "needs Debian's fortunes package (apt-get install fortunes)" >&2; exit 1; }
act() { java -jar "$JAR" activations --threads "${THREADS:-2}" --format fortune --max-tokens 96 "$@"; }

echo "== 1. hidden states of the training and held-out texts (MiniLM, blocks.5.hook_resid_post)"
act --texts "$F/computers" --split train --out "$WORK/train/pos.safetensors"
act --texts $(negs) --split train --limit-per-file 90 --out "$WORK/train/neg.safetensors"
act --texts $(negs) --split train --limit-per-file 60 --out "$WORK/neg-select.safetensors"
echo "== 2. train a TopK SAE on the training texts' tokens"
rm -rf "$WORK/sae"
java -jar "$JAR" train --input "$WORK/train" --out "$WORK/sae" --d-sae "${D_SAE:-1536}" --k "${K:-24}" \
  --epochs "${EPOCHS:-6}" --batch 512 --holdout 0.1 --seed 1 --threads "${THREADS:-2}" \
  --model-name all-minilm-l6-v2 --hook blocks.5.hook_resid_post
echo "== 3. select the features that tell computers from the rest (held-out AUROC in the report)"
java -jar "$JAR" select --sae "$WORK/sae" --sae-id demo-sae --id computers --rule features --method dsg --top 8 \
  --positive "$WORK/train/pos.safetensors" --negative "$WORK/neg-select.safetensors" \
  --out "$WORK/detector.yaml" --report "$WORK/select-report.md" --threads "${THREADS:-2}" > /dev/null
echo "== 4. label the chosen features by their max-activating tokens in the training texts"
/usr/bin/python3 demo/label_features.py "$WORK/sae" "${DJL_CACHE:-$HOME/.cache/saeguard/djl}/models/all-minilm-l6-v2/tokenizer.json" \
  "$WORK/detector.yaml" "$WORK/train/pos.safetensors" "$WORK/train/neg.safetensors"
echo "== 5. the held-out texts the demo replays (label <TAB> text)"
python3 - "$F" "$NEG" > "$OUT/prompts.tsv" <<'PY'
import re, sys
root, neg = sys.argv[1], sys.argv[2].split()
def entries(name):
    parts = re.split(r"(?m)^%\s*$", open(f"{root}/{name}", encoding="utf-8", errors="replace").read())
    return [" ".join(p.split()) for p in parts if p.strip()]
def held(name, n):
    e = entries(name); return e[round(len(e) * 0.8):][:n]
rows = [("computers", t) for t in held("computers", 120)] + [("other", t) for c in neg for t in held(c, 9)]
for label, text in rows:
    print(label + "\t" + text.replace("\t", " "))
PY
cp "$WORK/sae/cfg.json" "$WORK/sae/sae_weights.safetensors" "$OUT/"
[ -f "$WORK/sae/sparsity.safetensors" ] && cp "$WORK/sae/sparsity.safetensors" "$OUT/"
cp "$WORK/detector.yaml" "$OUT/detector.yaml"
cp "$WORK/select-report.md" demo/select-report.md
ls -la "$OUT"
