#!/usr/bin/env python3
"""Writes saeguard's copy of SAELens's release table (sae_lens/pretrained_saes.yaml) as compact JSON.

Usage: saelens_table.py PRETRAINED_SAES_YAML VERSION COMMIT > sae/src/main/resources/io/saeguard/sae/hub/saelens-pretrained-saes.json

Keeps only what saeguard needs to find an SAE's files on the Hugging Face Hub and to load them: per release its
repo_id, model, conversion_func (null = sae_lens), the normalize_activations of its config_overrides, and per SAE
its id, path and norm_scaling_factor. The table is SAELens's (MIT licence, SAELENS-LICENSE beside the JSON).
Needs PyYAML (python3-yaml).
"""
import json
import sys

import yaml


def main():
    source, version, commit = sys.argv[1:4]
    with open(source) as f:
        table = yaml.safe_load(f)
    out = []
    for name, release in table.items():
        r = {"repo_id": release["repo_id"], "model": release["model"],
             "conversion": release.get("conversion_func") or "sae_lens"}
        overrides = release.get("config_overrides") or {}
        if "normalize_activations" in overrides:
            r["normalize_activations"] = overrides["normalize_activations"]
        saes = []
        for sae in release["saes"]:
            entry = [sae["id"], sae["path"]]
            if sae.get("norm_scaling_factor") is not None:
                entry.append(sae["norm_scaling_factor"])
            saes.append(entry)
        r["saes"] = saes
        out.append((name, r))
    header = {"project": "SAELens", "url": "https://github.com/jbloomAus/SAELens", "file": "sae_lens/pretrained_saes.yaml",
              "version": version, "commit": commit, "licence": "MIT", "copyright": "Copyright (c) 2023 Joseph Bloom",
              "licence_file": "SAELENS-LICENSE",
              "saes": "[id, path] or [id, path, norm_scaling_factor]; conversion sae_lens = SAELens's conversion_func null"}
    lines = ['{"source": ' + json.dumps(header) + ',', ' "releases": {']
    for i, (name, r) in enumerate(out):
        lines.append('  ' + json.dumps(name) + ': ' + json.dumps(r, separators=(",", ":"))
                     + (',' if i < len(out) - 1 else ''))
    lines.append(' }}')
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
