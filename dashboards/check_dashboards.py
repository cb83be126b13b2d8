#!/usr/bin/env python3
"""Static checks of the saeguard Grafana dashboards (run by check.sh).

For every dashboard JSON under dashboards/grafana/:
  * it parses, has the expected uid, schemaVersion 39, refresh 10s, a `datasource` variable of type
    prometheus, and unique panel ids;
  * every non-row panel has targets, every target has a non-empty `expr`, and every panel and target
    uses the datasource {"type": "prometheus", "uid": "${datasource}"};
  * exprs only use the variables $__rate_interval, $__interval, $__range (inside range selectors) and
    $sae / $detector (inside label matchers);
  * every expr, with the variables substituted ($__rate_interval/$__interval -> 1m, $__range -> 5m,
    $sae/$detector -> .+), parses as PromQL: the exprs are written into a temporary rule file as
    recording rules and checked with `promtool check rules`.

Usage: check_dashboards.py [--promtool PATH] DASHBOARD.json...
Exit status 0 when everything passes, 1 otherwise.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

EXPECTED_UIDS = {"saeguard-overview", "saeguard-features", "saeguard-detectors"}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SUBSTITUTIONS = [("$__rate_interval", "1m"), ("$__interval", "1m"), ("$__range", "5m"),
                 ("$sae", ".+"), ("$detector", ".+")]
RANGE_VARS = ("$__rate_interval", "$__interval", "$__range")
LABEL_VARS = ("$sae", "$detector")


def panels(items):
    for p in items:
        yield p
        yield from panels(p.get("panels", []))


def check_expr(where, expr, errors):
    # No variables beyond the known ones, no ${...} forms.
    for var in re.findall(r"\$\{?[A-Za-z_][A-Za-z0-9_]*", expr):
        if var not in RANGE_VARS + LABEL_VARS:
            errors.append(f"{where}: unknown or unsupported variable {var!r} in {expr!r}")
    # Range variables only directly inside [...] (optionally as the range of a subquery).
    for m in re.finditer(r"\$__(rate_interval|interval|range)\b", expr):
        before = expr[:m.start()].rstrip()
        if not (before.endswith("[") or before.endswith(":")):
            errors.append(f"{where}: ${m.group(0)[1:]} outside a range selector in {expr!r}")
    # Label variables only as the whole value of a regex matcher: label=~"$var".
    for m in re.finditer(r"\$(sae|detector)\b", expr):
        if not re.search(r'[a-zA-Z_][a-zA-Z0-9_]*\s*=~\s*"$', expr[:m.start()]) or expr[m.end():m.end() + 1] != '"':
            errors.append(f"{where}: ${m.group(1)} not used as label=~\"${m.group(1)}\" in {expr!r}")


def substitute(expr):
    for var, value in SUBSTITUTIONS:
        expr = expr.replace(var, value)
    return expr


def check_dashboard(path, errors, exprs):
    try:
        with open(path, encoding="utf-8") as f:
            dash = json.load(f)
    except (OSError, ValueError) as e:
        errors.append(f"{path}: does not parse as JSON: {e}")
        return
    name = os.path.basename(path)
    if dash.get("uid") not in EXPECTED_UIDS:
        errors.append(f"{name}: uid {dash.get('uid')!r} is not one of {sorted(EXPECTED_UIDS)}")
    if dash.get("schemaVersion") != 39:
        errors.append(f"{name}: schemaVersion {dash.get('schemaVersion')!r}, expected 39")
    if dash.get("refresh") != "10s":
        errors.append(f"{name}: refresh {dash.get('refresh')!r}, expected '10s'")
    if dash.get("id") is not None:
        errors.append(f"{name}: id must be null for provisioning")
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        errors.append(f"{name}: no `datasource` variable of type datasource/prometheus")
    for v in variables.values():
        if v.get("type") == "query" and v.get("datasource") != DATASOURCE:
            errors.append(f"{name}: variable {v.get('name')} does not use {DATASOURCE}")

    ids = set()
    n_targets = 0
    for p in panels(dash.get("panels", [])):
        title = p.get("title", "?")
        where = f"{name}: panel {p.get('id')} {title!r}"
        if p.get("id") in ids:
            errors.append(f"{where}: duplicate panel id")
        ids.add(p.get("id"))
        if "gridPos" not in p:
            errors.append(f"{where}: no gridPos")
        if p.get("type") in ("row", "text"):
            continue
        if p.get("datasource") != DATASOURCE:
            errors.append(f"{where}: panel datasource is {p.get('datasource')!r}, expected {DATASOURCE}")
        targets = p.get("targets") or []
        if not targets:
            errors.append(f"{where}: no targets")
        for t in targets:
            n_targets += 1
            twhere = f"{where} target {t.get('refId', '?')}"
            if t.get("datasource") != DATASOURCE:
                errors.append(f"{twhere}: datasource is {t.get('datasource')!r}, expected {DATASOURCE}")
            expr = t.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                errors.append(f"{twhere}: no expr")
                continue
            check_expr(twhere, expr, errors)
            exprs.append((twhere, substitute(expr)))
    print(f"{name}: {len(ids)} panels, {n_targets} targets")


def promql_parse(exprs, promtool, errors):
    """Parses every expr with promtool by wrapping each in a recording rule."""
    with tempfile.TemporaryDirectory() as tmp:
        rules = os.path.join(tmp, "dashboard-exprs.yml")
        with open(rules, "w", encoding="utf-8") as f:
            f.write("groups:\n  - name: dashboard-exprs\n    rules:\n")
            for i, (_, expr) in enumerate(exprs):
                f.write(f"      - record: dashboard_expr_{i}\n        expr: {json.dumps(expr)}\n")
        r = subprocess.run([promtool, "check", "rules", "--lint=none", rules], capture_output=True, text=True)
        if r.returncode != 0:
            out = r.stdout + r.stderr
            for i, (where, expr) in enumerate(exprs):
                if re.search(rf'"dashboard_expr_{i}"', out):
                    errors.append(f"{where}: PromQL does not parse: {expr!r}")
            errors.append("promtool check rules on the dashboard exprs failed:\n" + out.strip())
        else:
            print(f"PromQL: {len(exprs)} dashboard exprs parse")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--promtool", default=os.environ.get("PROMTOOL", "promtool"))
    ap.add_argument("dashboards", nargs="+")
    args = ap.parse_args()
    errors, exprs = [], []
    uids = []
    for path in args.dashboards:
        check_dashboard(path, errors, exprs)
        try:
            with open(path, encoding="utf-8") as f:
                uids.append(json.load(f).get("uid"))
        except (OSError, ValueError):
            pass
    if len(set(uids)) != len(uids):
        errors.append(f"duplicate dashboard uids: {uids}")
    if exprs:
        promql_parse(exprs, args.promtool, errors)
    for e in errors:
        print("ERROR: " + e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
