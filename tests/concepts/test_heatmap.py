"""steer_ui.concepts.heatmap: per-token projections, checked against transformers'
own ``output_hidden_states`` (entry i + 1 is the output of decoder layer i)."""

from __future__ import annotations

import pytest
import torch

from conftest import make_tiny, random_vector
from steer_ui.concepts import heatmap
from steer_ui.errors import ContrastError, LayerError, VectorError


def _refs(lm, n=6):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, lm.n_layers, lm.hidden_size, generator=g), torch.randn(n, lm.n_layers, lm.hidden_size,
                                                                                  generator=g)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_projections_are_the_hidden_states_transformers_reports(arch):
    lm = make_tiny(arch)
    v, (pos, neg) = random_vector(lm), _refs(lm)
    text = "the happy day and the sad night"
    hm = heatmap.token_heatmap(lm, text, v, 1, pos, neg)
    ids = lm.tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        hidden = lm.model(input_ids=ids, output_hidden_states=True).hidden_states[2][0]  # after layer 1
    want = hidden.float() @ v.unit(1)
    torch.testing.assert_close(torch.tensor(hm.projections), want, atol=1e-4, rtol=1e-4)
    ref = torch.cat([pos[:, 1], neg[:, 1]]) @ v.unit(1)
    z = (want - ref.mean()) / ref.std()
    torch.testing.assert_close(torch.tensor(hm.z[1:]), z[1:], atol=1e-4, rtol=1e-4)
    assert hm.z[0] == 0.0  # the attention sink is not scored
    assert len(hm.tokens) == len(ids[0])


def test_html_colours_each_token_and_escapes_text():
    lm = make_tiny("llama")
    hm = heatmap.Heatmap("m", 1, ["<b>", " good", " bad"], [0.0, 2.0, -2.0], [0.0, 2.0, -2.0])
    out = heatmap.to_html(hm)
    assert "&lt;b&gt;" in out and "<b>m</b>" in out
    assert out.count('class="hm-tok"') == 3
    assert "rgba(220,38,38" in out and "rgba(37,99,235" in out  # red for +, blue for -
    assert 'title="z +2.00' in out
    del lm


def test_bad_inputs_say_what_is_wrong():
    lm = make_tiny("llama")
    v, (pos, neg) = random_vector(lm), _refs(lm)
    with pytest.raises(ContrastError, match="Type or pick"):
        heatmap.token_heatmap(lm, "  ", v, 1, pos, neg)
    with pytest.raises(LayerError, match="out of range"):
        heatmap.token_heatmap(lm, "the day", v, 9, pos, neg)
    with pytest.raises(ContrastError, match="longer than|more than the model's context"):
        heatmap.token_heatmap(lm, "the day " * 100, v, 1, pos, neg)
    from steer_ui.concepts.vectors import ConceptVector

    with pytest.raises(VectorError, match="was made for"):
        heatmap.token_heatmap(lm, "the day", ConceptVector(torch.randn(5, 16), "other"), 1, pos, neg)
