"""Writes bf16_linear.pt, the TorchScript module behind `engine.cpu_bf16` (DeviceDictionary).

Run with Debian's PyTorch to regenerate the checked-in resource:

    /usr/bin/python3 sae/src/main/torchscript/bf16_linear.py \
        sae/src/main/resources/io/saeguard/sae/engine/bf16_linear.pt

Why a module: DJL 0.35 cannot hold a BF16 (or INT16) NDArray (the JVM crashes), so the BF16 copy
of W_enc must live inside libtorch, out of DJL's sight. The module is stateless until `load` is
called with the F32 encoder weight; `forward` then takes F32 tensors and writes an F32 tensor, and
only the GEMM in between runs in BF16 (libtorch hands a BF16 linear to oneDNN, which uses AVX512-BF16 / AMX where
the CPU has them, accumulating in F32; the product is rounded to BF16 once, then widened).
libtorch compiles the module's code again when it loads it, so a file written by Debian's torch 1.13
loads in the jar's libtorch 2.7.1 (SaeEquivalenceIT's BF16 cases run it).
"""
import sys

import torch


class Bf16Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.zeros(1, 1, dtype=torch.bfloat16)  # [d_out, d_in] once loaded

    @torch.jit.export
    def load(self, w: torch.Tensor) -> int:
        """Takes W [d_in, d_out] (F32, any strides) and keeps a contiguous BF16 copy of its transpose."""
        self.weight = w.t().contiguous().to(torch.bfloat16)
        return int(self.weight.numel())

    def forward(self, x: torch.Tensor, out: torch.Tensor) -> int:
        """Writes x·W into out: x [n, d_in] F32, out [n, d_out] F32 (allocated by the caller), the GEMM in BF16.

        The caller allocates `out` because DJL runs modules in inference mode: a tensor the module
        allocated would be an inference tensor, which the caller could not update in place after.
        """
        out.copy_(torch.nn.functional.linear(x.to(torch.bfloat16), self.weight))
        return int(out.size(0))


def main(path):
    module = torch.jit.script(Bf16Linear())
    w = torch.randn(8, 5)
    module.load(w)
    x = torch.randn(3, 8)
    result = torch.empty(3, 5)
    module(x, result)
    err = (result - x @ w).abs().max().item()
    assert err < 0.05, err
    torch.jit.script(Bf16Linear()).save(path)  # saved unloaded: a 1x1 placeholder weight
    print(f"wrote {path} (torch {torch.__version__}, self-check max |err| {err:.2e})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bf16_linear.pt")
