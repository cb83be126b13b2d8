"""Hook point names: HF model.layers[L] output = hidden_states[L+1] = vLLM aux layer id L+1 = blocks.L.hook_resid_post."""
import pytest
import torch

from saeguard_attach import ResidPost, find_decoder_layer


@pytest.mark.parametrize("name", ["blocks.12.hook_resid_post", "model.layers.12", "model.layers.12.output",
                                  "model.layers[12]", "layers.12"])
def test_every_spelling_of_the_output_of_layer_12_parses_to_layer_12(name):
    assert ResidPost.parse(name).layer == 12


def test_one_hook_point_under_each_numbering():
    h = ResidPost(12)
    assert (h.saelens, h.hf_module, h.hf_output) == ("blocks.12.hook_resid_post", "model.layers.12", "model.layers.12.output")
    assert h.hidden_states_index == 13 and h.vllm_aux_layer_id == 13
    assert ResidPost.from_hidden_states_index(13) == h


@pytest.mark.parametrize("bad", ["blocks.12.hook_resid_pre", "blocks.x.hook_resid_post", "model.embed_tokens"])
def test_names_of_other_hook_points_are_refused(bad):
    with pytest.raises(ValueError):
        ResidPost.parse(bad)


def test_hidden_states_zero_is_the_embeddings_not_a_layer():
    with pytest.raises(ValueError, match="embedding"):
        ResidPost.from_hidden_states_index(0)


def test_find_decoder_layer_picks_the_module_whose_output_is_the_stream():
    class Inner(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.ModuleList([torch.nn.Identity() for _ in range(4)])

    class CausalLM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = Inner()

    lm = CausalLM()
    assert find_decoder_layer(lm, 3) is lm.model.layers[3]
    with pytest.raises(IndexError):
        find_decoder_layer(lm, 4)
