#!/usr/bin/env python3
"""Helpers of build.sh for the MiniLM catalog's packs.

    packs.py choose TASK FOLDS.json...
        From `saeguard select --folds K (or --folds-by group) --l2 GRID --json` reports on the TRAINING split
        only (one report per probe --top tried; each probe's L2 strength chosen by select on the same folds),
        prints "RULE TOP" for the SAE-based rule with the best mean fold AUROC (probe at each --top, dsg,
        features; the dense raw-probe is a baseline, never chosen). A larger --top must beat a
        smaller one by more than 0.005 AUROC to be chosen (fewer named features when it is a tie).
        The held-out split plays no part in the choice.

    packs.py header PACK.yaml TASK SELECT.json EVAL.json CHOICE.txt SPLIT_NOTE COMMANDS...
        Prepends the pack's provenance header: held-out AUROC, TPR at 1 % FPR, precision and recall of the
        pack (from `saeguard eval`), the dense raw-activation probe and the string match on the same split
        (from `saeguard select --test-data`), how the rule was chosen, and the exact commands. The lines
        `# held_out_auroc: X` etc. are parsed by CatalogQualityIT.
"""
import json
import sys


def mean_auroc(report, rule):
    return report["mean"][rule]["auroc"] if "mean" in report else report["folds"][0]["rules"][rule]["auroc"]


def l2_of(report, rule):
    """' (lambda X)' when select chose the rule's L2 strength on the folds (--l2 with several values), else ''."""
    c = report.get("l2", {}).get(rule)
    return f" (lambda {c['chosen']:g})" if c and c.get("grid") else ""


def choose(task, files):
    candidates = []  # (auroc, rule, top, lambda note)
    for path in files:
        with open(path) as f:
            report = json.load(f)
        top = len(report["folds"][0]["rules"]["probe"]["features"])
        candidates.append((mean_auroc(report, "probe"), "probe", top, l2_of(report, "probe")))
        if path == files[0]:
            for rule in ("dsg", "features"):
                candidates.append((mean_auroc(report, rule), rule, len(report["folds"][0]["rules"][rule]["features"]), ""))
            dense = mean_auroc(report, "raw-probe")
            dense_l2 = l2_of(report, "raw-probe")
            scheme = report["folds"][0]["split"]
    candidates.sort(key=lambda c: (c[2], c[1]))
    best = max(candidates, key=lambda c: c[0])
    chosen = min((c for c in candidates if c[0] >= best[0] - 0.005), key=lambda c: c[2])
    n = len(json.load(open(files[0]))['folds'])
    kind = "leave-one-group-out" if "group" in scheme else "random"
    lines = [f"{task}: training-side {n}-fold ({kind}) mean AUROC (dense raw-probe {dense:.3f}{dense_l2}):"]
    for a, rule, top, l2 in sorted(candidates, key=lambda c: -c[0]):
        lines.append(f"  {rule}{' top ' + str(top) if rule == 'probe' else ''}{l2}: {a:.3f}")
    lines.append(f"  chosen: {chosen[1]} (top {chosen[2]})")
    print("\n".join(lines), file=sys.stderr)
    print(chosen[1], chosen[2])
    return "\n".join(lines)


def fmt(v):
    return "n/a" if v is None else f"{v:.3f}"


def string_match_row(report_md):
    """The held-out string-match row of select's Markdown report (AUROC, TPR, precision, recall), if it scored anything."""
    try:
        with open(report_md, encoding="utf-8") as f:
            for line in f:
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                if cells and cells[0] == "string match" and len(cells) > 4 and cells[1] not in ("–", "-"):
                    return cells[1:5]
    except FileNotFoundError:
        pass
    return None


def header(pack, task, select_json, eval_json, choice_txt, split_note, commands):
    with open(select_json) as f:
        sel = json.load(f)
    with open(eval_json) as f:
        ev = json.load(f)["detectors"][task]
    rules = sel["folds"][0]["rules"]
    dense = rules["raw-probe"]
    written = rules[sel["written_rule"]]
    with open(choice_txt) as f:
        choice = [l.rstrip() for l in f if l.strip()]
    out = [
        f"# MiniLM catalog pack '{task}' (detectors/catalog/minilm; rebuilt by build.sh from SAEGUARD_DATA_DIR).",
        f"# Held-out split: {split_note}",
        f"# Held-out numbers of this pack, from saeguard eval on the shipped config ({ev['n_positive']} positive, {ev['n_negative']} negative):",
        f"# held_out_auroc: {ev['auroc']:.3f}",
        f"# held_out_tpr_at_1pct_fpr: {ev['tpr_at_1pct_fpr']:.3f}",
        f"# held_out_precision: {fmt(ev['precision'])}",
        f"# held_out_recall: {fmt(ev['recall'])}",
        f"# On the same held-out texts (saeguard select --test-data): this rule AUROC {written['auroc']:.3f};",
        f"#   dense raw-activation probe AUROC {dense['auroc']:.3f}, TPR@1%FPR {dense['tpr_at_target_fpr']:.3f},"
        f" precision {fmt(dense['precision'])}, recall {fmt(dense['recall'])} (dense_probe_auroc: {dense['auroc']:.3f})",
    ]
    sm = string_match_row(pack[:-len(".yaml")] + "-select.md")
    if sm:
        out.append(f"#   string match ({sel.get('string_match_baseline')}): AUROC {sm[0]}, precision {sm[2]}, recall {sm[3]}")
    out.append(f"# gap to the dense probe: {ev['auroc'] - dense['auroc']:+.3f} AUROC")
    if ev["auroc"] < dense["auroc"] - 0.02:
        out.append("# More than 0.02 below the dense probe (README.md here, Gaps): the probe sees only the SAE's codes, which leave part")
        out.append("#   of MiniLM's state unexplained (held-out FVU in sae/saeguard-training.json); both probes' L2 strengths were chosen")
        out.append("#   on the training folds. What may close it: more of this task's text in the SAE's corpus (or a residual SAE on it,")
        out.append("#   train --residual-of), or a probe kind that adds the SAE's error term.")
    out.append("# Rule chosen on the training split only:")
    out += ["#   " + l for l in choice]
    out.append("# Commands (W = the build's work folder, written by prepare.py from SAEGUARD_DATA_DIR):")
    out += ["#   " + c for c in commands]
    with open(pack) as f:
        lines = f.read().split("\n")
    while lines and lines[0].startswith("#"):  # an earlier header is replaced
        lines.pop(0)
    body = "\n".join(lines)
    with open(pack, "w") as f:
        f.write("\n".join(out) + "\n" + body)


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "choose":
        text = choose(sys.argv[2], sys.argv[3:])
    elif len(sys.argv) >= 8 and sys.argv[1] == "header":
        header(*sys.argv[2:8], sys.argv[8:])
    else:
        sys.exit(__doc__)
