#!/usr/bin/env bash
# Checks the saeguard dashboards and Prometheus rules. Run from the repository root:
#   bash dashboards/check.sh
# Needs promtool (Prometheus 2.x or 3.x) and python3; PROMTOOL=/path/to/promtool overrides.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PROMTOOL="${PROMTOOL:-promtool}"
command -v "$PROMTOOL" >/dev/null || { echo "check.sh: $PROMTOOL not found" >&2; exit 1; }
command -v python3 >/dev/null || { echo "check.sh: python3 not found" >&2; exit 1; }

step() { printf '\n== %s\n' "$*"; }

step "promtool check rules"
"$PROMTOOL" check rules dashboards/prometheus/saeguard-rules.yml

step "promtool test rules"
"$PROMTOOL" test rules dashboards/prometheus/saeguard-rules.test.yml

step "promtool check config"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp dashboards/prometheus/prometheus.yml dashboards/prometheus/saeguard-rules.yml "$tmp/"
# prometheus.yml scrapes with a bearer token read from this file (compose mounts the real one there).
echo placeholder-token > "$tmp/saeguard-metrics-token"
"$PROMTOOL" check config "$tmp/prometheus.yml"

step "dashboard JSON"
shopt -s nullglob
dashboards=(dashboards/grafana/*.json)
if [ "${#dashboards[@]}" -ne 3 ]; then
  echo "expected 3 dashboards under dashboards/grafana/, found ${#dashboards[@]}" >&2
  exit 1
fi
for f in "${dashboards[@]}"; do
  python3 -m json.tool "$f" >/dev/null
  echo "$f: valid JSON"
done
for f in dashboards/grafana/provisioning/*/*.yaml; do
  python3 - "$f" <<'PY'
import sys
try:
    import yaml
except ImportError:
    sys.exit(0)  # PyYAML is optional; the Grafana provisioning files are then not parsed
yaml.safe_load(open(sys.argv[1]))
print(f"{sys.argv[1]}: valid YAML")
PY
done

step "dashboard panels and PromQL"
python3 dashboards/check_dashboards.py --promtool "$PROMTOOL" "${dashboards[@]}"

printf '\nAll checks passed.\n'
