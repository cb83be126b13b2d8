"""Steer and clamp arithmetic, checked against float64 computations written out here."""
import pytest
import torch

from saeguard_attach import clamp, steer


def _rand(*shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_steer_adds_coefficient_times_the_vector_to_every_token():
    x, v = _rand(3, 5, 16, seed=1), _rand(16, seed=2)
    out = steer(x, v, -4.5)
    expected = x.double() + (-4.5) * v.double()
    assert torch.allclose(out.double(), expected, rtol=0, atol=1e-5)


def test_clamp_sets_the_component_along_the_unit_direction_and_keeps_the_rest():
    # Given tokens and an unnormalised direction
    x, v = _rand(7, 32, seed=3), _rand(32, seed=4) * 3.7
    u = v.double() / v.double().norm()

    # When clamped to 2.5
    out = clamp(x, v, 2.5).double()

    # Then the component along u is 2.5, and the orthogonal part is untouched
    assert torch.allclose(out @ u, torch.full((7,), 2.5, dtype=torch.float64), atol=1e-5)
    ortho_in = x.double() - (x.double() @ u).unsqueeze(-1) * u
    ortho_out = out - (out @ u).unsqueeze(-1) * u
    assert torch.allclose(ortho_out, ortho_in, atol=1e-5)


def test_bf16_streams_are_edited_in_float32_and_returned_in_bf16():
    x, v = _rand(4, 64, seed=5).to(torch.bfloat16), _rand(64, seed=6)
    out = clamp(x, v, 1.0)
    assert out.dtype == torch.bfloat16
    u = v / v.norm()
    expected = (x.float() + (1.0 - x.float() @ u).unsqueeze(-1) * u).to(torch.bfloat16)
    assert torch.equal(out, expected)


@pytest.mark.parametrize("op", [lambda x, v: steer(x, v, 1.0), lambda x, v: clamp(x, v, 1.0)])
def test_a_vector_of_the_wrong_width_is_refused(op):
    with pytest.raises(ValueError, match="d=8"):
        op(torch.zeros(2, 8), torch.ones(9))


def test_a_zero_clamp_direction_is_refused():
    with pytest.raises(ValueError, match="norm"):
        clamp(torch.zeros(2, 8), torch.zeros(8), 1.0)
