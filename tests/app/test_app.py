"""The Gradio app served in-process on 127.0.0.1 and driven through ``gradio_client``,
with the real Qwen2.5-0.5B (LLM) and SmolLM2-135M (SLM) loaded."""

from __future__ import annotations

import re

import pytest

from conftest import served_app
from steer_ui.models import zoo

pytestmark = pytest.mark.real

gradio_client = pytest.importorskip("gradio_client")
from gradio_client.exceptions import AppError  # noqa: E402

LLM, SLM = "qwen2.5-0.5b", "smollm2-135m"
PROMPT = "Tell me about your weekend."


@pytest.fixture(scope="module")
def served():
    """(workbench, demo, url) of the app running in this process; closed at module end.
    float32: these tests compare texts of different batches, which only fp32 keeps exact."""
    with served_app(LLM, SLM, "float32") as served_tuple:
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
    """After an error: no hook is left behind, a valid request works, and the loaded
    models are the same objects."""
    from steer_ui.steering.hooks import hooks_left

    wb = served[0]
    assert all(hooks_left(lm) == 0 for lm in wb.models.values())
    client, result = extracted
    out = client.predict(**_steer_args(max_new=3, slm_layer=int(_layer(result[2]))))
    assert out[2].strip() and out[3].strip(), out
    assert _models(wb) == before


# ---------- serving ----------

def test_served_on_loopback_without_a_share_link(served):
    import os
    from urllib.parse import urlsplit

    import psutil

    _, demo, url = served
    port = urlsplit(url).port
    listening = [c.laddr.ip for c in psutil.Process(os.getpid()).net_connections("tcp")
                 if c.status == psutil.CONN_LISTEN and c.laddr.port == port]
    assert listening == ["127.0.0.1"], listening  # bound to loopback only, as app.py binds it
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
    assert "**LLM** qwen2.5-0.5b: **happy-sad**, 8 pairs" in summary, summary
    assert "**SLM** smollm2-135m: **happy-sad**, 8 pairs" in summary, summary
    n_llm, n_slm = wb.models["llm"].n_layers, wb.models["slm"].n_layers
    assert float(llm_layer).is_integer() and 0.2 * n_llm <= llm_layer < 0.8 * n_llm
    assert float(slm_layer).is_integer() and 0.2 * n_slm <= slm_layer < 0.8 * n_slm
    assert f"best layer {int(llm_layer)}" in summary and f"best layer {int(slm_layer)}" in summary
    assert all(fig is not None for fig in result[3:6])  # two PCA plots and the profile


def test_steer_slm_changes_the_text(extracted):
    client, result = extracted
    llm_plain, llm_steered, plain, steered, status = client.predict(**_steer_args(slm_layer=int(_layer(result[2]))))
    assert (llm_plain, llm_steered) == ("", "")  # only the SLM was asked for
    assert plain.strip() and steered.strip()
    assert steered != plain


def test_sweep_returns_one_row_per_intensity_matching_steer(extracted):
    client, result = extracted
    layer = int(_layer(result[2]))
    values = [0.0, 0.8, -0.8]
    table, status = client.predict(role_v="SLM", values=", ".join(map(str, values)), prompt_v=PROMPT,
                                   kind_v="native", mode_v="relative", llm_layer=12, slm_layer=layer, max_new_v=24,
                                   temperature_v=0, top_p_v=1, seed_v=0, api_name="/sweep")
    rows = table["data"]
    assert status.startswith(f"SLM: **happy-sad** (native) at layer {layer}, relative · 24 tokens,"), status
    assert len(rows) == len(values)
    assert [float(r[0]) for r in rows] == values
    assert all(str(r[1]).strip() for r in rows)
    assert len({r[1] for r in rows}) == 3, rows  # every intensity says something different
    # the sweep is the same greedy generation as /steer: its 0 and 0.8 rows are those texts
    _, _, plain, steered, _ = client.predict(**_steer_args(slm_layer=layer))
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
    llm_name = wb.start_pair.pop("llm")
    try:
        client = _client(served[2])
        result = client.predict(src="Preset", preset_v="happy-sad", limit_v=8, method_v="mean-diff",
                                position_v="last", pos_v="", neg_v="", ab_v=None, api_name="/extract")
        assert "**SLM** smollm2-135m: **happy-sad**, 8 pairs" in result[0] and "**LLM**" not in result[0]
    finally:
        wb.start_pair["llm"] = llm_name
    _still_serving(served, extracted, _models(wb))


# ---------- chat, transfer, compare, evaluate, stop ----------

def test_chat_streams_the_models_own_answer(served, extracted):
    from steer_ui.steering.generation import Sampling, generate

    wb = served[0]
    client, _ = extracted
    history, box = client.predict(history=[], message="What is the capital of France?", max_new_v=12,
                                  temperature_v=0, top_p_v=1, seed_v=0, api_name="/chat_slm")
    assert box == ""
    assert [m["role"] for m in history] == ["user", "assistant"]
    answer = history[-1]["content"]
    answer = answer[0]["text"] if isinstance(answer, list) else answer
    slm = wb.models["slm"]
    expected = generate(slm, slm.chat_messages([{"role": "user", "content": "What is the capital of France?"}]),
                        None, [0.0], None, Sampling(12), chat=False)[0]
    assert answer == expected and "Paris" in answer


@pytest.fixture(scope="module")
def transferred(extracted):
    client, result = extracted
    out = client.predict(method_v="ridge", matching_v="depth", sources_v=["concept"], n_v=64,
                         slm_layer=int(_layer(result[2])), api_name="/transfer")
    return client, result, out


def test_transfer_endpoint_reports_and_offers_the_new_vector(transferred):
    _, _, out = transferred
    from steer_ui.transfer.maps import depth_pairs

    text, kind_update, arms_update = out[0], out[4], out[5]
    # the verdict is read at the SLM's best layer, carried from the LLM layer at the same depth
    slm_best = int(re.search(r"\*\*SLM\*\* smollm2-135m: .*?best layer (\d+)", extracted_summary(transferred)).group(1))
    llm_layer = depth_pairs(24, 30)[slm_best]
    assert f"read at SLM layer {slm_best} (from LLM layer {llm_layer})" in text, text
    assert "**transferred:ridge:happy-sad** steers at SLM layer" in text and re.search(rf"at layer {slm_best}", text), text
    assert kind_update["value"] == "transferred:ridge:happy-sad"
    assert "transferred:ridge:happy-sad" in [c[0] if isinstance(c, (list, tuple)) else c for c in kind_update["choices"]]
    assert "transferred:ridge:happy-sad" in arms_update["value"]


def extracted_summary(transferred) -> str:
    return transferred[1][0]


def test_compare_runs_every_vector_of_the_session_in_one_batch(transferred):
    client, result, _ = transferred
    table, status = client.predict(prompt_v=PROMPT, x=0.8, mode_v="relative", slm_layer=int(_layer(result[2])),
                                   max_new_v=16, temperature_v=0, top_p_v=1, seed_v=0, api_name="/compare")
    assert status.startswith(f"SLM: 3 vectors at layer {int(_layer(result[2]))}, intensity +0.80 relative"), status
    rows = {r[0]: r[1] for r in table["data"]}
    assert list(rows) == ["unsteered", "native", "random control", "transferred:ridge:happy-sad"]
    assert all(t.strip() for t in rows.values())
    assert rows["native"] != rows["unsteered"]


def test_evaluate_endpoint_scores_the_sessions_vectors(transferred):
    from gradio_client import handle_file

    from conftest import FIXTURES

    client, _, _ = transferred
    table, plot1, plot2, files = client.predict(dataset_v="sentiment (ours, A/B)", upload_v=handle_file(
        str(FIXTURES / "ab_small.json")), task_v="ab", arms_v=["native", "transferred:ridge:happy-sad"],
        scaling_v="dev-sweep", grid_v="0, 0.5", limit_v=12, api_name="/evaluate")
    assert "| arm | vector | layer |" in table
    for arm in ("baseline", "native", "transferred:ridge:happy-sad"):
        assert f"| {arm} |" in table, table
    assert plot1 is not None and plot2 is not None
    assert any(str(f).endswith("report.json") for f in files) and any(str(f).endswith(".html") for f in files)


def test_stop_ends_a_long_generation_at_once(served, extracted):
    import time

    from steer_ui.steering.hooks import hooks_left

    client, result = extracted
    job = client.submit(**{**_steer_args(max_new=256, slm_layer=int(_layer(result[2]))),
                           "prompt_v": "Tell me a long story about a dragon."})
    deadline = time.monotonic() + 120
    while not job.outputs() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job.outputs(), "generation never started"
    client.predict(api_name="/stop")
    start = time.monotonic()
    texts = job.result(timeout=60)
    assert time.monotonic() - start < 10
    steered = texts[3]
    assert len(served[0].models["slm"].tokenizer(steered)["input_ids"]) < 128, steered  # cut well short of 256
    assert all(hooks_left(lm) == 0 for lm in served[0].models.values())
    _still_serving(served, extracted, _models(served[0]))


# ---------- mean pooling and preset files, through the UI ----------

def test_extract_mean_pooling_from_two_lists_that_differ_only_at_the_end(served):
    openings = ["Write about the sea", "Tell me about dinner", "Describe the city at night",
                "Say something about winter", "Talk about your job", "Write about a long trip"]
    client = _client(served[2])
    result = client.predict(src="Two lists", preset_v="happy-sad", limit_v=0, method_v="mean-diff",
                            position_v="mean", pos_v="\n".join(f"{o}, joyfully." for o in openings),
                            neg_v="\n".join(f"{o}, gloomily." for o in openings), ab_v=None, api_name="/extract")
    assert "**SLM** smollm2-135m: **custom**, 6 pairs" in result[0] and "**LLM** qwen2.5-0.5b: **custom**, 6 pairs" in result[0]


def test_concept_upload_accepts_an_edited_preset_copy(served, tmp_path):
    import json

    from gradio_client import handle_file

    from steer_ui.config import ASSETS

    preset = json.loads((ASSETS / "presets" / "happy-sad.json").read_text())
    preset.update(name="cheerful-grumpy", positive_persona="a cheerful person", negative_persona="a grumpy person")
    path = tmp_path / "cheerful.json"
    path.write_text(json.dumps(preset))
    result = _client(served[2]).predict(src="File", preset_v="happy-sad", limit_v=6, method_v="mean-diff",
                                        position_v="last", pos_v="", neg_v="", ab_v=handle_file(str(path)),
                                        api_name="/extract")
    assert "**SLM** smollm2-135m: **cheerful-grumpy**, 6 pairs" in result[0], result[0]


def test_a_user_error_is_one_log_line_and_no_traceback(served, extracted, caplog, capfd):
    """A bad list is the user's mistake, not a bug: one line in the terminal, no traceback."""
    import logging

    client, _ = extracted
    capfd.readouterr()
    with caplog.at_level(logging.INFO, logger="steer_ui"):
        with pytest.raises(AppError, match=r"3 positive vs 2 negative"):
            client.predict(src="Two lists", preset_v="happy-sad", limit_v=8, method_v="mean-diff",
                           position_v="last", pos_v="I am glad.\nWhat a day!\nLovely.",
                           neg_v="I am sad.\nWhat a mess.", ab_v=None, api_name="/extract")
    lines = [r.getMessage() for r in caplog.records if r.name == "steer_ui"]
    assert len(lines) == 1 and lines[0].startswith("extract: The lists must pair up: 3 positive vs 2 negative")
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err, err[-3000:]
