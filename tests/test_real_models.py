"""The bundled real models end to end: offline load, the dense cache, a concept that
steers next-token probabilities, and batched against sequential generation.

These load SmolLM2-135M (and build a fresh dense cache once), so they are the slow part
of the suite; every check asserts values the model actually produces.
"""

from __future__ import annotations

import json
import os
import time

import pytest
import torch

from steer_ui import zoo
from steer_ui.activations import encode
from steer_ui.contrast import from_preset
from steer_ui.generation import Sampling, generate
from steer_ui.models import ModelSpec, load_model
from steer_ui.steering import hooks_left, steer
from steer_ui.workbench import extract_concept

from conftest import real_model

POSITIVE_WORDS = (" happy", " great", " wonderful", " love")
NEGATIVE_WORDS = (" sad", " terrible", " awful", " bad")


@pytest.fixture(scope="module")
def happy():
    """The happy/sad concept of SmolLM2 (16 preset pairs), extracted once for this module."""
    lm = real_model("smollm2-135m")
    return extract_concept(lm, from_preset("happy-sad", limit=16)).vector


def _first_token(lm, word: str) -> int:
    return lm.tokenizer(word, add_special_tokens=False)["input_ids"][0]


# ---------- offline load and plain generation ----------

@pytest.mark.real
def test_smollm_loads_offline_and_answers_paris(smollm):
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    assert smollm.name == "smollm2-135m"
    assert smollm.family == "llama"
    assert smollm.n_layers == 30 and smollm.hidden_size == 576
    assert smollm.device.type == "cpu"

    answer = generate(smollm, "What is the capital of France?", None, [0.0], None, Sampling(20))[0]
    assert "Paris" in answer, answer
    # coherent English: mostly letters, spaces and punctuation, and several words
    assert answer.isascii(), answer
    assert len(answer.split()) >= 3, answer


# ---------- the dense cache ----------

def _load_smollm() -> tuple[object, float]:
    start = time.perf_counter()
    lm = load_model(ModelSpec("smollm2-135m", device="cpu"))
    return lm, time.perf_counter() - start


def _next_logits(lm, prompt: str = "The capital of France is") -> torch.Tensor:
    batch = encode(lm, [prompt])
    with torch.inference_mode():
        return lm.model(**batch).logits[0, -1].float()


@pytest.mark.real
def test_dense_cache_is_built_reused_and_rebuilt_when_truncated(tmp_path, monkeypatch, smollm):
    monkeypatch.setenv("STEER_UI_CACHE", str(tmp_path))
    assert zoo.cache_root() == tmp_path
    folder = zoo.dense_dir("smollm2-135m", str(smollm.dtype).removeprefix("torch."))
    assert not folder.exists()

    first, t_first = _load_smollm()
    assert (folder / zoo.MARKER).is_file()
    assert zoo.dense_cache_ok(folder)
    sizes = json.loads((folder / zoo.MARKER).read_text())["sizes"]
    shards = sorted(folder.glob("*.safetensors"))
    assert shards and all(p.name in sizes for p in shards)
    assert not list(tmp_path.glob("models/*.tmp*")), "temporary build folder left behind"
    status = {row["name"]: row for row in zoo.status()}
    assert status["smollm2-135m"]["cached"] == [str(smollm.dtype).removeprefix("torch.")]

    mtimes = {p.name: p.stat().st_mtime_ns for p in shards}
    second, t_second = _load_smollm()
    # the cache was read, not rewritten
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("*.safetensors")} == mtimes
    assert t_second * 3 < t_first, f"cached load {t_second:.1f}s vs first load {t_first:.1f}s"
    # cached weights are the weights the session fixture (built earlier) uses
    reference = _next_logits(smollm)
    torch.testing.assert_close(_next_logits(first), reference)
    torch.testing.assert_close(_next_logits(second), reference)

    # corrupt: truncate the biggest shard to half its size
    shard = max(shards, key=lambda p: p.stat().st_size)
    full = shard.stat().st_size
    with open(shard, "r+b") as f:
        f.truncate(full // 2)
    assert not zoo.dense_cache_ok(folder)
    assert {row["name"]: row for row in zoo.status()}["smollm2-135m"]["cached"] == []

    third, _ = _load_smollm()
    assert zoo.dense_cache_ok(folder)
    assert shard.stat().st_size == full
    torch.testing.assert_close(_next_logits(third), reference)
    answer = generate(third, "What is the capital of France?", None, [0.0], None, Sampling(12))[0]
    assert "Paris" in answer, answer


# ---------- a concept steers next-token probabilities ----------

@pytest.mark.real
def test_happy_concept_moves_positive_vs_negative_word_probabilities(smollm, happy):
    v = happy
    assert v.n_layers == smollm.n_layers and v.hidden_size == smollm.hidden_size
    assert v.default_layer is not None and 0.2 * v.n_layers <= v.default_layer < 0.8 * v.n_layers
    assert v.separability[v.default_layer] >= 0.9, v.separability

    pos_ids = [_first_token(smollm, w) for w in POSITIVE_WORDS]
    neg_ids = [_first_token(smollm, w) for w in NEGATIVE_WORDS]
    assert len(set(pos_ids + neg_ids)) == 8
    text = smollm.chat("Tell me about your weekend.", assistant_prefix="I feel")
    batch = encode(smollm, [text])

    def probs(x: float) -> tuple[float, float]:
        with steer(smollm, v, x), torch.inference_mode():
            p = smollm.model(**batch).logits[0, -1].float().softmax(-1)
        return float(p[pos_ids].sum()), float(p[neg_ids].sum())

    rows = {x: probs(x) for x in (-0.5, 0.0, 0.5)}
    assert hooks_left(smollm) == 0
    (pos_m, neg_m), (pos_0, neg_0), (pos_p, neg_p) = rows[-0.5], rows[0.0], rows[0.5]
    detail = {x: (f"{a:.2e}", f"{b:.2e}") for x, (a, b) in rows.items()}
    # positive words rise with intensity, negative words fall
    assert pos_m < pos_0 < pos_p, detail
    assert neg_m > neg_0 > neg_p, detail
    # and the odds of positive over negative grow monotonically, by a clear factor each step
    ratios = [a / b for a, b in (rows[-0.5], rows[0.0], rows[0.5])]
    assert ratios[0] * 2 < ratios[1] and ratios[1] * 2 < ratios[2], (ratios, detail)


# ---------- batched against sequential generation ----------

@pytest.mark.real
def test_batched_intensities_equal_sequential_generation(smollm, happy):
    prompt, sampling, values = "Tell me about your weekend.", Sampling(20), [0.0, 0.3, -0.3]
    batched = generate(smollm, prompt, happy, values, None, sampling)
    sequential = [generate(smollm, prompt, happy, [x], None, sampling)[0] for x in values]
    assert hooks_left(smollm) == 0
    assert all(t.strip() for t in batched), batched
    # steering changes the text, so the comparison is not between three copies of one text
    assert batched[1] != batched[0] and batched[2] != batched[0], batched
    assert batched == sequential
