#!/usr/bin/env bash
# The Compose stack's producer: replays the demo's held-out texts (ToxiGen statements, XSTest prompts,
# fortunes; label<TAB>text per line) as prompt events (topics/schemas/prompt.schema.json) on
# saeguard.prompts, one every PROMPT_INTERVAL_S seconds, round after round, so the sidecar's MiniLM
# catalog decides them and Grafana shows its alerts. Runs in the apache/kafka image, with its
# console producer.
set -euo pipefail

: "${BOOTSTRAP:=kafka:9092}" "${TOPIC:=saeguard.prompts}" "${PROMPTS:=/demo/prompts.tsv}"
: "${PROMPT_INTERVAL_S:=1}" "${MODEL:=all-minilm-l6-v2}"
: "${ROUNDS:=0}"    # 0: forever
: "${DRY_RUN:=0}"   # 1: print the key<TAB>event lines instead of producing them (tests)

json_string() {  # $1 as a JSON string: backslash, quote, tab and backspace escaped, other controls dropped
  local LC_ALL=C s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\t'/\\t}
  s=${s//$'\b'/\\b}   # the fortunes underline with backspaces
  s=${s//[$'\001'-$'\037']/}
  printf '"%s"' "$s"
}

events() {
  local round=0 n label text id
  while [[ "$ROUNDS" -eq 0 || "$round" -lt "$ROUNDS" ]]; do
    round=$((round + 1))
    n=0
    while IFS=$'\t' read -r label text; do
      [[ -z "$text" ]] && continue
      n=$((n + 1))
      id="compose-$round-$n-$label"
      printf '%s\t{"request_id":%s,"model":%s,"text":%s,"role":"user","phase":"prompt","ts":%d}\n' \
        "$id" "$(json_string "$id")" "$(json_string "$MODEL")" "$(json_string "$text")" "$(( $(date +%s) * 1000 ))"
      sleep "$PROMPT_INTERVAL_S"
    done < "$PROMPTS"
    echo "replayed round $round ($n prompts)" >&2
  done
}

if [[ "$DRY_RUN" == 1 ]]; then
  events
  exit 0
fi
events | /opt/kafka/bin/kafka-console-producer.sh --bootstrap-server "$BOOTSTRAP" --topic "$TOPIC" \
  --property parse.key=true --property key.separator=$'\t'
