"""SAEGUARD_* settings shared by the vLLM integrations: defaults, and errors that name the variable and the fix."""
import pytest
import torch

from saeguard_attach.vllm_settings import SettingsError, VllmSettings

BASE = {"SAEGUARD_BOOTSTRAP": "kafka:9092", "SAEGUARD_MODEL": "meta-llama/Llama-3.1-8B", "SAEGUARD_LAYER": "12"}


def test_the_three_required_variables_give_resid_post_of_that_layer_and_the_default_topics():
    s = VllmSettings.from_env(BASE)
    assert (s.bootstrap, s.model, s.layer, s.hook) == ("kafka:9092", "meta-llama/Llama-3.1-8B", 12,
                                                       "blocks.12.hook_resid_post")
    assert (s.activations_topic, s.decisions_topic, s.phases, s.abort_blocked) == (
        "saeguard.activations", "saeguard.decisions", ("prompt",), True)
    assert s.source.metadata("r", 0, "prompt", False)["hook"] == "blocks.12.hook_resid_post"


def test_optional_variables_override_and_kafka_properties_pass_through_by_prefix():
    s = VllmSettings.from_env(dict(BASE, SAEGUARD_HOOK="model.layers.12.mlp", SAEGUARD_SAE="sae-x",
                                   SAEGUARD_PHASES="prompt,generation", SAEGUARD_ABORT_BLOCKED="false",
                                   SAEGUARD_DTYPE="bfloat16", SAEGUARD_REQUESTS="chatcmpl-.*",
                                   SAEGUARD_KAFKA_SECURITY_PROTOCOL="SSL"))
    assert s.hook == "model.layers.12.mlp" and s.sae == "sae-x" and s.observe_generation and not s.abort_blocked
    assert s.dtype is torch.bfloat16 and s.kafka == {"security.protocol": "SSL"}
    assert s.watches("chatcmpl-1") and not s.watches("cmpl-1")


@pytest.mark.parametrize("change, message", [
    ({"SAEGUARD_BOOTSTRAP": ""}, "SAEGUARD_BOOTSTRAP is not set; fix"),
    ({"SAEGUARD_LAYER": "-1"}, "SAEGUARD_LAYER='-1': not a layer index; fix"),
    ({"SAEGUARD_LAYER": "twelve"}, "SAEGUARD_LAYER='twelve'"),
    ({"SAEGUARD_PHASES": "generation"}, "SAEGUARD_PHASES='generation': fix"),
    ({"SAEGUARD_REQUESTS": "("}, "SAEGUARD_REQUESTS='\\(': not a regular expression"),
    ({"SAEGUARD_ABORT_BLOCKED": "maybe"}, "SAEGUARD_ABORT_BLOCKED='maybe': fix: true or false"),
    ({"SAEGUARD_DTYPE": "int8"}, "SAEGUARD_DTYPE='int8': fix: one of float32"),
])
def test_a_missing_or_malformed_variable_is_named_with_its_fix(change, message):
    with pytest.raises(SettingsError, match=message):
        VllmSettings.from_env(dict(BASE, **change))
