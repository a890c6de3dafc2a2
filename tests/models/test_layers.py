"""steer_ui.models.layers: finding the decoder layers of every architecture we know."""

from __future__ import annotations

import pytest
from torch import nn

from conftest import make_tiny
from steer_ui.errors import ModelError
from steer_ui.models.layers import find_layers


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    yield


ARCHS = ["llama", "qwen2", "gemma3", "gpt2"]


@pytest.mark.parametrize("arch", ARCHS)
def test_find_layers_on_every_tiny_arch(arch):
    lm = make_tiny(arch)
    layers = find_layers(lm.model)
    assert isinstance(layers, nn.ModuleList)
    assert len(layers) == 3
    expected = lm.model.transformer.h if arch == "gpt2" else lm.model.model.layers
    assert layers is expected
    assert lm.n_layers == 3 and lm.hidden_size == 32


def test_layers_path_override_is_followed():
    lm = make_tiny("llama")
    assert find_layers(lm.model, "model.layers") is lm.model.model.layers


def test_layers_path_override_that_leads_nowhere():
    lm = make_tiny("llama")
    with pytest.raises(ModelError, match=r"'model\.nothing' does not lead to a non-empty ModuleList"):
        find_layers(lm.model, "model.nothing")
    # A path to something that is not a ModuleList is refused too.
    with pytest.raises(ModelError, match="does not lead"):
        find_layers(lm.model, "model.embed_tokens")


def test_layers_path_finds_custom_layout():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = nn.Module()
            self.backbone.blocks = nn.ModuleList([nn.Linear(2, 2) for _ in range(4)])

    m = Odd()
    assert find_layers(m, "backbone.blocks") is m.backbone.blocks
    with pytest.raises(ModelError, match="Could not find the decoder layers of this Odd"):
        find_layers(m)


def test_plain_module_error_tells_how_to_set_the_path():
    with pytest.raises(ModelError) as info:
        find_layers(nn.Sequential(nn.Linear(2, 2)))
    msg = str(info.value)
    assert "Sequential" in msg
    assert "--layers-path" in msg and "layers_path" in msg
    assert "model.layers" in msg and "transformer.h" in msg  # lists what it tried


def test_empty_module_list_is_not_layers():
    class Empty(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = nn.Module()
            self.model.layers = nn.ModuleList()

    with pytest.raises(ModelError, match="Could not find the decoder layers"):
        find_layers(Empty())


