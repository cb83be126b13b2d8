"""GuardHook on a stand-in layer, with recorded publishing and decisions held in memory."""
import pytest
import torch

from fakes import FakePublisher, FakeVectors, book_with
from saeguard_attach import VLLM_RESIDUAL, Action, Blocked, GuardHook, parse_decision

D = 16


class TupleLayer(torch.nn.Module):
    """Returns (x * 2, extra) like an HF decoder layer returns (hidden_states, ...)."""

    def forward(self, x):
        return x * 2, "extra"


class PairLayer(torch.nn.Module):
    """Returns (hidden, residual) like a vLLM decoder layer with fused add+norm."""

    def forward(self, x):
        return x * 2, x + 1


def _vec(seed):
    return torch.randn(D, generator=torch.Generator().manual_seed(seed))


def _d(request_id, seq, action, vector_id="sae/7", coefficient=0.0, value=None):
    raw = {"request_id": request_id, "seq": seq, "action": action, "position": 0}
    if action in ("steer", "clamp"):
        raw["vector"] = {"id": vector_id, "coefficient": coefficient} | ({} if value is None else {"value": value})
    return parse_decision(raw)


def _hooked(layer, decisions=None, vectors=None, **kw):
    pub = FakePublisher()
    hook = GuardHook(pub, decisions, vectors, **kw)
    hook.attach(layer)
    return hook, pub


def test_bound_rows_are_published_before_any_edit_with_positions_and_phases_and_untracked_rows_are_not():
    # Given a steer decision for "a", a hook bound to rows ["a", None, "b"]
    v = _vec(1)
    layer = TupleLayer()
    hook, pub = _hooked(layer, book_with(_d("a", 0, "steer", coefficient=3.0)), FakeVectors({"sae/7": v}))
    hook.bind(["a", None, "b"])
    x = torch.randn(3, 4, D)

    # When a prefill of 4 tokens and one decode step run
    out, extra = layer(x)
    layer(torch.randn(3, 1, D))

    # Then each tracked row was published as computed (2x), prompt at 0 then generation at 4
    assert [(c[0], c[2], c[4]) for c in pub.calls] == [("a", 0, "prompt"), ("b", 0, "prompt"),
                                                      ("a", 4, "generation"), ("b", 4, "generation")]
    assert torch.equal(pub.calls[0][1], x[0] * 2) and torch.equal(pub.calls[1][1], x[2] * 2)
    # And only row "a" was steered; the tuple's other elements pass through
    assert torch.allclose(out[0], x[0] * 2 + 3.0 * v, atol=1e-6)
    assert torch.equal(out[1], x[1] * 2) and torch.equal(out[2], x[2] * 2)
    assert extra == "extra" and hook.stats.steered == 2


def test_clamp_sets_the_component_along_the_unit_vector_for_its_request():
    v = _vec(2) * 5
    layer = TupleLayer()
    hook, _ = _hooked(layer, book_with(_d("a", 3, "clamp", value=-1.25)), FakeVectors({"sae/7": v}))
    hook.bind(["a"])
    x = torch.randn(1, 6, D)
    out, _ = layer(x)
    u = (v / v.norm()).double()
    expected = (x * 2).double() + (-1.25 - (x * 2).double() @ u).unsqueeze(-1) * u
    assert torch.allclose(out.double(), expected, atol=1e-5)
    assert hook.stats.clamped == 1


def test_block_raises_before_the_pass_is_published():
    layer = TupleLayer()
    hook, pub = _hooked(layer, book_with(_d("b", 2, "block")))
    hook.bind(["a", "b"])
    with pytest.raises(Blocked) as caught:
        layer(torch.randn(2, 1, D))
    assert caught.value.request_ids == ["b"] and caught.value.decisions["b"].seq == 2
    assert pub.calls == [] and hook.stats.blocked == 1


def test_left_padding_is_skipped_in_the_prefill_and_positions_count_real_tokens_only():
    layer = TupleLayer()
    hook, pub = _hooked(layer)
    hook.bind(["a", "b"], left_padding=[2, 0], token_ids=torch.arange(10).reshape(2, 5))
    x = torch.randn(2, 5, D)
    layer(x)
    layer(torch.randn(2, 1, D))
    (a0, b0, a1, b1) = pub.calls
    assert torch.equal(a0[1], x[0, 2:] * 2) and a0[5].tolist() == [2, 3, 4]
    assert b0[1].shape[0] == 5 and b0[5].tolist() == [5, 6, 7, 8, 9]
    assert (a1[2], b1[2]) == (3, 5) and a1[5] is None


def test_generation_tokens_are_buffered_and_finish_sends_the_rest_as_final():
    layer = TupleLayer()
    hook, pub = _hooked(layer, flush_every_tokens=3)
    hook.bind(["a"])
    steps = [torch.randn(1, 2, D)] + [torch.randn(1, 1, D) for _ in range(4)]
    for s in steps:
        layer(s)
    hook.finish("a")
    assert [(c[2], c[1].shape[0], c[3], c[4]) for c in pub.calls] == [
        (0, 2, False, "prompt"), (2, 3, False, "generation"), (5, 1, True, "generation")]
    assert torch.equal(pub.calls[1][1], torch.cat([s[0] * 2 for s in steps[1:4]]))


def test_packed_vllm_output_is_read_as_hidden_plus_residual_and_edits_go_onto_hidden():
    v = _vec(3)
    layer = PairLayer()
    hook, pub = _hooked(layer, book_with(_d("b", 0, "steer", coefficient=-2.0)), FakeVectors({"sae/7": v}),
                        residual=VLLM_RESIDUAL)
    hook.bind_packed([("a", 3), (None, 2), ("b", 1)])
    x = torch.randn(6, D)
    hidden, residual = layer(x)
    stream = x * 2 + (x + 1)
    assert torch.equal(pub.calls[0][1], stream[:3]) and torch.equal(pub.calls[1][1], stream[5:])
    assert torch.equal(residual, x + 1)
    assert torch.allclose(hidden + residual, torch.cat([stream[:5], stream[5:] - 2.0 * v]), atol=1e-5)


def test_a_decision_whose_vector_is_not_cached_yet_leaves_the_stream_alone():
    layer = TupleLayer()
    hook, _ = _hooked(layer, book_with(_d("a", 0, "steer", vector_id="sae/unknown", coefficient=9.0)), FakeVectors({}))
    hook.bind(["a"])
    x = torch.randn(1, 2, D)
    out, _ = layer(x)
    assert torch.equal(out, x * 2) and hook.stats.missing_vector == 1 and hook.stats.steered == 0


def test_an_unbound_hook_changes_nothing_and_a_wrong_batch_size_is_an_error():
    layer = TupleLayer()
    hook, pub = _hooked(layer)
    x = torch.randn(2, 3, D)
    assert torch.equal(layer(x)[0], x * 2) and pub.calls == []
    hook.bind(["a"])
    with pytest.raises(ValueError, match="bound 1 rows"):
        layer(x)


def test_allow_and_flag_decisions_do_not_edit():
    layer = TupleLayer()
    book = book_with(_d("a", 0, "flag"))
    hook, _ = _hooked(layer, book, FakeVectors({}))
    hook.bind(["a"])
    x = torch.randn(1, 1, D)
    assert torch.equal(layer(x)[0], x * 2)
    assert book.latest("a").action is Action.FLAG
