"""The end-to-end world: a random SAE (make_sae.py), a TinyLM, and a feature planted to fire.

Everything expected is computed here, independently of saeguard_attach and of the sidecar: SAE
codes with the float64 PyTorch reference of the Java tests (sae_reference.py) from the weights as
stored, decoder directions from the same file.
"""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import torch

import paths
from tiny_lm import TinyLM, generate

reference_io = paths.load_reference("safetensors_io")
reference_sae = paths.load_reference("sae_reference")

HOOK_LAYER = 3  # make_sae.py writes SAELens SAEs for blocks.3.hook_resid_post
PROMPT_TOKENS = 6
STEPS = 10
MIN_TRIGGER_PASS = 2  # at least two decode passes run unchanged before the first intervention
SCORE_MARGIN = 1.2  # the planted token's activation is >= 1.2x every earlier counted token's
THETA_MARGIN = 1e-3


@dataclass
class ReferenceSae:
    """SAELens JumpReLU SAE as stored on disk, in float64."""

    path: Path
    params: dict

    @classmethod
    def generate(cls, out: Path, seed: int, d_in: int) -> "ReferenceSae":
        subprocess.run([sys.executable, str(paths.make_sae()), "--format", "saelens", "--arch", "jumprelu",
                        "--d-in", str(d_in), "--d-sae", "256", "--tokens", "4", "--seed", str(seed),
                        "--out", str(out)], check=True, capture_output=True)
        case = json.loads((out / "case.json").read_text())
        assert case["architecture"] == "jumprelu" and case["hook"] == "blocks.%d.hook_resid_post" % HOOK_LAYER
        tensors, _ = reference_io.read_safetensors(str(out / "sae" / "sae_weights.safetensors"))
        return cls(out / "sae", {k: torch.from_numpy(v).double() for k, v in tensors.items()})

    def codes(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(features, pre-activations) ``[tokens, d_sae]`` of ``x`` ``[tokens, d_in]``."""
        feats, pre, _, _ = reference_sae.run_saelens(x.double(), self.params, "jumprelu", "none", None, True)
        return feats, pre

    def unit_row(self, feature: int) -> torch.Tensor:
        w = self.params["W_dec"][feature]
        return w / w.norm()

    def theta(self, feature: int) -> float:
        return float(self.params["threshold"][feature])


@dataclass(frozen=True)
class Plan:
    """Feature ``feature`` fires (activation >= ``threshold``) first in the record of pass
    ``trigger_pass``, so the first intervention is at pass ``trigger_pass + 1``."""

    prompt: torch.Tensor
    feature: int
    threshold: float
    trigger_pass: int


def layer_outputs(model: TinyLM, prompt: torch.Tensor, steps: int) -> List[torch.Tensor]:
    """The hooked layer's output per pass (``[tokens, d]``) of an unguarded greedy run."""
    out: List[torch.Tensor] = []
    handle = model.model.layers[HOOK_LAYER].register_forward_hook(lambda m, i, o: out.append(o[0][0].detach().clone()))
    try:
        generate(model, prompt, steps)
    finally:
        handle.remove()
    return out


def record_activation(acts: torch.Tensor, first: int) -> torch.Tensor:
    """Per token of a record starting at request position ``first``: its activation of one
    feature, with request position 0 (BOS, never counted by the detector) set to 0."""
    a = acts.clone()
    if first == 0:
        a[0] = 0
    return a


def _candidate(sae: ReferenceSae, passes: List[torch.Tensor]) -> Optional[Tuple[int, float, int]]:
    feats, pre = sae.codes(torch.cat(passes))
    firsts = [0, PROMPT_TOKENS] + [PROMPT_TOKENS + k for k in range(1, len(passes) - 1)]
    best = None
    for j in range(MIN_TRIGGER_PASS, len(passes) - 3):
        t = firsts[j]
        for f in range(feats.shape[1]):
            a = float(feats[t, f])
            if a <= 0 or float(pre[t, f]) - sae.theta(f) < THETA_MARGIN:
                continue
            # an earlier token within THETA_MARGIN of the SAE's own threshold may be active in float32: count it as theta
            near = pre[:t, f] > sae.theta(f) - THETA_MARGIN
            before = float(record_activation(torch.where(near, feats[:t, f].clamp(min=sae.theta(f)), feats[:t, f]), 0).max())
            if a >= SCORE_MARGIN * before and (best is None or a / max(before, 1e-9) > best[0]):
                best = (a / max(before, 1e-9), f, (a + before) / 2 if before > 0 else a / 2)
        if best is not None:
            return best[1], best[2], j
    return None


def plan(model: TinyLM, sae: ReferenceSae, seed: int) -> Plan:
    """Finds a prompt and a feature that stays below its detector threshold until a decode pass
    >= MIN_TRIGGER_PASS and then fires clearly; tries prompts until one works."""
    for attempt in range(50):
        prompt = torch.randint(0, 101, (1, PROMPT_TOKENS), generator=torch.Generator().manual_seed(seed + attempt))
        found = _candidate(sae, layer_outputs(model, prompt, STEPS))
        if found is not None:
            return Plan(prompt, found[0], found[1], found[2])
    raise AssertionError("seed %d: no prompt with a cleanly planted feature in 50 tries" % seed)
