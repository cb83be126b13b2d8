#!/bin/sh
# Self-check of the Python SAE reference generator (make_sae.py).
#
#  1. `make_sae.py --self-test`: generates every supported (format, arch, options) combination
#     (the list is in make_sae.py's docstring and in make_sae_selftest.CASES), re-reads every
#     file, recomputes the expected outputs with a second numpy-only implementation, and checks
#     shapes, dtypes, configs, sparsity levels, tie margins, determinism and BF16 rounding.
#  2. The command-line contract the Java tests rely on: `seed: S` printed first, exit 0 on
#     success, exit 2 with `unsupported: ...` on stderr for an unsupported combination.
#
# Uses Debian's /usr/bin/python3 (torch + numpy); override with PYTHON=...
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-/usr/bin/python3}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

"$PY" "$HERE/make_sae.py" --self-test

out=$("$PY" "$HERE/make_sae.py" --format saelens --arch jumprelu --out "$TMP/a" --seed 42)
echo "$out" | head -1 | grep -qx 'seed: 42' || { echo "FAIL: seed line: $out"; exit 1; }
for f in sae/cfg.json sae/sae_weights.safetensors input.safetensors expected.safetensors case.json; do
  [ -s "$TMP/a/$f" ] || { echo "FAIL: missing $f"; exit 1; }
done

out=$("$PY" "$HERE/make_sae.py" --format sparsify --out "$TMP/b")
echo "$out" | head -1 | grep -q '^seed: [0-9][0-9]*$' || { echo "FAIL: random seed line: $out"; exit 1; }

set +e
"$PY" "$HERE/make_sae.py" --format gemma-scope --arch topk --out "$TMP/c" --seed 1 >"$TMP/out" 2>"$TMP/err"
rc=$?
set -e
[ "$rc" -eq 2 ] || { echo "FAIL: unsupported combination exited $rc"; exit 1; }
grep -q '^unsupported: ' "$TMP/err" || { echo "FAIL: no 'unsupported:' message"; cat "$TMP/err"; exit 1; }
[ ! -e "$TMP/c" ] || { echo "FAIL: unsupported combination wrote output"; exit 1; }
echo "command-line contract ok"
