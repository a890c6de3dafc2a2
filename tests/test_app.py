"""The Gradio app served in-process on 127.0.0.1 and driven through ``gradio_client``,
with the real Qwen2.5-0.5B (LLM) and SmolLM2-135M (SLM) loaded."""

from __future__ import annotations

import math
import os

import pytest

from steer_ui import zoo

from conftest import served_app

pytestmark = pytest.mark.real

gradio_client = pytest.importorskip("gradio_client")
from gradio_client.exceptions import AppError  # noqa: E402

LLM, SLM = "qwen2.5-0.5b", "smollm2-135m"
PROMPT = "Tell me about your weekend."


@pytest.fixture(scope="module")
def served():
    """(workbench, demo, url) of the app running in this process; closed at module end."""
    with served_app(LLM, SLM) as served_tuple:
        yield served_tuple


def _client(url):
    return gradio_client.Client(url, verbose=False)


def _steer_args(prompt=PROMPT, x=0.8, slm_layer=15, max_new=24, target="SLM"):
    return dict(prompt_v=prompt, target_v=target, kind_v="native", x=x, mode_v="relative", pos_v="all",
                llm_layer=12, slm_layer=slm_layer, max_new_v=max_new, temperature_v=0, top_p_v=1, seed_v=0,
                api_name="/steer")


@pytest.fixture(scope="module")
def extracted(served):
    """A client session that extracted happy-sad (8 pairs) in both models: (client, result)."""
    _, _, url = served
    client = _client(url)
    result = client.predict(src="Preset", preset_v="happy-sad", limit_v=8, method_v="mean-diff",
                            position_v="last", pos_v="", neg_v="", ab_v=None, api_name="/extract")
    return client, result


def _layer(update) -> float:
    """A slider value from an extract result (Gradio sends ``gr.update`` dicts back)."""
    return update["value"] if isinstance(update, dict) else update


def _models(wb):
    return {role: (lm.name, id(lm)) for role, lm in wb.models.items()}


def _still_serving(served, extracted, before):
    """After an error: a valid request works and the loaded models are the same objects."""
    wb = served[0]
    client, result = extracted
    out = client.predict(**_steer_args(max_new=3, slm_layer=int(_layer(result[2]))))
    assert out[2].strip() and out[3].strip(), out
    assert _models(wb) == before


# ---------- serving ----------

def test_served_on_loopback_without_analytics(served):
    _, demo, url = served
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"
    assert demo.server_name == "127.0.0.1"
    assert demo.local_url == url
    assert demo.share_url is None
    info = _client(url).view_api(print_info=False, return_format="dict")
    names = set(info["named_endpoints"])
    assert {"/extract", "/steer", "/sweep", "/load_llm", "/load_slm"} <= names, names


# ---------- extract, steer, sweep ----------

def test_extract_from_preset_in_both_models(served, extracted):
    wb = served[0]
    _, result = extracted
    summary, llm_layer, slm_layer = result[0], _layer(result[1]), _layer(result[2])
    assert result[1]["maximum"] == wb.models["llm"].n_layers - 1
    assert result[2]["maximum"] == wb.models["slm"].n_layers - 1
    assert "**LLM** qwen2.5-0.5b: 8 pairs" in summary, summary
    assert "**SLM** smollm2-135m: 8 pairs" in summary, summary
    n_llm, n_slm = wb.models["llm"].n_layers, wb.models["slm"].n_layers
    assert float(llm_layer).is_integer() and 0.2 * n_llm <= llm_layer < 0.8 * n_llm
    assert float(slm_layer).is_integer() and 0.2 * n_slm <= slm_layer < 0.8 * n_slm
    assert f"best layer {int(llm_layer)}" in summary and f"best layer {int(slm_layer)}" in summary
    assert all(fig is not None for fig in result[3:6])  # two PCA plots and the profile


def test_steer_slm_changes_the_text(extracted):
    client, result = extracted
    llm_plain, llm_steered, plain, steered = client.predict(**_steer_args(slm_layer=int(_layer(result[2]))))
    assert (llm_plain, llm_steered) == ("", "")  # only the SLM was asked for
    assert plain.strip() and steered.strip()
    assert steered != plain


def test_sweep_returns_one_row_per_intensity_matching_steer(extracted):
    client, result = extracted
    layer = int(_layer(result[2]))
    values = [0.0, 0.8, -0.8]
    table = client.predict(role_v="SLM", values=", ".join(map(str, values)), prompt_v=PROMPT, kind_v="native",
                           mode_v="relative", llm_layer=12, slm_layer=layer, max_new_v=24, temperature_v=0,
                           top_p_v=1, seed_v=0, api_name="/sweep")
    rows = table["data"]
    assert len(rows) == len(values)
    assert [float(r[0]) for r in rows] == values
    assert all(str(r[1]).strip() for r in rows)
    assert len({r[1] for r in rows}) == 3, rows  # every intensity says something different
    # the sweep is the same greedy generation as /steer: its 0 and 0.8 rows are those texts
    _, _, plain, steered = client.predict(**_steer_args(slm_layer=layer))
    assert rows[0][1] == plain
    assert rows[1][1] == steered


# ---------- bad input: a readable error, and the app keeps serving ----------

def test_steer_before_extract_asks_to_extract_first(served, extracted):
    before = _models(served[0])
    fresh = _client(served[2])
    # layers 0/1: a fresh session's sliders still have the build-time range 0..1 (see below)
    with pytest.raises(AppError, match="Extract a concept first"):
        fresh.predict(**{**_steer_args(max_new=3, slm_layer=1), "llm_layer": 1})
    _still_serving(served, extracted, before)


def test_fresh_session_steer_at_a_real_layer_asks_to_extract_first(served):
    fresh = _client(served[2])
    with pytest.raises(AppError) as info:
        fresh.predict(**_steer_args(max_new=3, slm_layer=15))
    assert "Extract a concept first" in str(info.value), str(info.value)


def test_unequal_two_lists_in_extract(served, extracted):
    before = _models(served[0])
    client, _ = extracted
    with pytest.raises(AppError, match=r"3 positive vs 2 negative"):
        client.predict(src="Two lists", preset_v="happy-sad", limit_v=8, method_v="mean-diff",
                       position_v="last", pos_v="I am glad.\nWhat a day!\nLovely.",
                       neg_v="I am sad.\nWhat a mess.", ab_v=None, api_name="/extract")
    # the failed extraction did not replace this session's concept: steering still works
    _still_serving(served, extracted, before)


def test_empty_prompt_for_steer(served, extracted):
    before = _models(served[0])
    client, result = extracted
    with pytest.raises(AppError, match="Type a prompt"):
        client.predict(**_steer_args(prompt="   ", max_new=3, slm_layer=int(_layer(result[2]))))
    _still_serving(served, extracted, before)


def test_sweep_with_nan_intensity(served, extracted):
    before = _models(served[0])
    client, result = extracted
    with pytest.raises(AppError, match=r"'nan' is not finite"):
        client.predict(role_v="SLM", values="0, nan", prompt_v=PROMPT, kind_v="native", mode_v="relative",
                       llm_layer=12, slm_layer=int(_layer(result[2])), max_new_v=3, temperature_v=0, top_p_v=1,
                       seed_v=0, api_name="/sweep")
    _still_serving(served, extracted, before)


@pytest.mark.parametrize("role", ["llm", "slm"])
def test_loading_an_unknown_model_lists_the_bundled_names(served, extracted, role):
    before = _models(served[0])
    client, _ = extracted
    with pytest.raises(AppError) as info:
        client.predict(source="nope", api_name=f"/load_{role}")
    message = str(info.value)
    assert "'nope'" in message, message
    for name in zoo.BUNDLED:
        assert name in message, message
    _still_serving(served, extracted, before)
    assert served[0].models["llm"].name == LLM and served[0].models["slm"].name == SLM


def test_extract_with_only_the_slm_loaded(served, extracted):
    wb = served[0]
    llm = wb.models.pop("llm")
    try:
        client = _client(served[2])
        result = client.predict(src="Preset", preset_v="happy-sad", limit_v=8, method_v="mean-diff",
                                position_v="last", pos_v="", neg_v="", ab_v=None, api_name="/extract")
        assert "**SLM** smollm2-135m: 8 pairs" in result[0] and "**LLM**" not in result[0]
    finally:
        wb.models["llm"] = llm
    _still_serving(served, extracted, _models(wb))


def test_errors_left_no_hooks_behind(served, extracted):
    from steer_ui.steering import hooks_left

    wb = served[0]
    assert all(hooks_left(lm) == 0 for lm in wb.models.values())
    assert not math.isnan(sum(wb.models["slm"].typical_norms().tolist()))
