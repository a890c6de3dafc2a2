"""The bundled real models end to end, in both dtypes: offline load, the dense cache, a
concept that steers next-token probabilities, and batched against sequential generation.

What is exact where: in float32, the dense cache gives the GGUF's logits and a batched
row gives its solo run's greedy text, token for token. In bfloat16 (the default on CPUs
with native bf16) the weights are still bit-identical, but bf16 kernels take different
paths for other shapes and strides, so logits differ slightly and greedy text can part
after ~10 tokens; those checks use tolerances that still catch a wrong weight or a
misplaced row. These load SmolLM2-135M in each dtype (and build a fresh dense cache).
"""

from __future__ import annotations

import json
import time

import pytest
import torch

from conftest import DTYPES, real_model
from steer_ui.concepts.contrast import from_preset
from steer_ui.concepts.extraction import extract_concept
from steer_ui.concepts.recording import typical_norms
from steer_ui.models import zoo
from steer_ui.models.loading import ModelSpec, load_model
from steer_ui.models.tokens import encode
from steer_ui.steering.generation import Sampling, generate
from steer_ui.steering.hooks import hooks_left, steer

POSITIVE_WORDS = (" happy", " great", " wonderful", " love")
NEGATIVE_WORDS = (" sad", " terrible", " awful", " bad")


@pytest.fixture(scope="module", params=DTYPES)
def dtype(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def lm(dtype):
    return real_model("smollm2-135m", dtype)


@pytest.fixture(scope="module")
def happy(lm):
    """The happy/sad concept of SmolLM2 (16 preset pairs), extracted once per dtype."""
    return extract_concept(lm, from_preset("happy-sad", limit=16)).vector


def _first_token(lm, word: str) -> int:
    return lm.tokenizer(word, add_special_tokens=False)["input_ids"][0]


# ---------- offline load and plain generation ----------

@pytest.mark.real
def test_smollm_loads_offline_and_answers_paris(lm, dtype):
    assert lm.name == "smollm2-135m"
    assert lm.family == "llama"
    assert lm.n_layers == 30 and lm.hidden_size == 576
    assert lm.device.type == "cpu" and str(lm.dtype) == f"torch.{dtype}"

    answer = generate(lm, "What is the capital of France?", None, [0.0], None, Sampling(20))[0]
    assert "Paris" in answer, answer
    # coherent English: mostly letters, spaces and punctuation, and several words
    assert answer.isascii(), answer
    assert len(answer.split()) >= 3, answer


# ---------- the dense cache ----------

def _load_smollm(dtype: str) -> tuple[object, float]:
    start = time.perf_counter()
    lm = load_model(ModelSpec("smollm2-135m", device="cpu", dtype=dtype))
    return lm, time.perf_counter() - start


def _next_logits(lm, prompt: str = "The capital of France is") -> torch.Tensor:
    batch = encode(lm, [prompt])
    with torch.inference_mode():
        return lm.model(**batch).logits[0, -1].float()


def _same_weights(a, b) -> None:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), k


def _close_logits(a: torch.Tensor, b: torch.Tensor, dtype: str) -> None:
    """fp32: equal up to float rounding. bf16: the same top token, 4 of the same top 5,
    cosine > 0.999 and every logit within 1.0 (a wrong weight moves logits by tens)."""
    if dtype == "float32":
        torch.testing.assert_close(a, b)
        return
    detail = (float((a - b).abs().max()), float(torch.nn.functional.cosine_similarity(a, b, dim=0)))
    assert a.argmax() == b.argmax(), detail
    assert len(set(a.topk(5).indices.tolist()) & set(b.topk(5).indices.tolist())) >= 4, detail
    assert detail[0] < 1.0 and detail[1] > 0.999, detail


@pytest.mark.real
def test_dense_cache_is_built_reused_and_rebuilt_when_truncated(tmp_path, monkeypatch, lm, dtype):
    monkeypatch.setenv("STEER_UI_CACHE", str(tmp_path))
    assert zoo.cache_root() == tmp_path
    folder = zoo.dense_dir("smollm2-135m", dtype)
    assert not folder.exists()

    first, t_first = _load_smollm(dtype)
    assert (folder / zoo.MARKER).is_file()
    assert zoo.dense_cache_ok(folder)
    sizes = json.loads((folder / zoo.MARKER).read_text())["sizes"]
    shards = sorted(folder.glob("*.safetensors"))
    assert shards and all(p.name in sizes for p in shards)
    assert not list(tmp_path.glob("models/*.tmp*")), "temporary build folder left behind"
    status = {row["name"]: row for row in zoo.status()}
    assert status["smollm2-135m"]["cached"] == [dtype]

    mtimes = {p.name: p.stat().st_mtime_ns for p in shards}
    second, t_second = _load_smollm(dtype)
    # the cache was read, not rewritten
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("*.safetensors")} == mtimes
    assert t_second * 3 < t_first, f"cached load {t_second:.1f}s vs first load {t_first:.1f}s"
    # the cached weights are, bit for bit, the ones dequantized from the GGUF ...
    _same_weights(second, first)
    # ... and give the logits of the model the session fixture loaded
    reference = _next_logits(lm)
    _close_logits(_next_logits(first), reference, dtype)
    _close_logits(_next_logits(second), reference, dtype)

    # corrupt: truncate the biggest shard to half its size
    shard = max(shards, key=lambda p: p.stat().st_size)
    full = shard.stat().st_size
    with open(shard, "r+b") as f:
        f.truncate(full // 2)
    assert not zoo.dense_cache_ok(folder)
    assert {row["name"]: row for row in zoo.status()}["smollm2-135m"]["cached"] == []

    third, _ = _load_smollm(dtype)
    assert zoo.dense_cache_ok(folder)
    assert shard.stat().st_size == full
    _same_weights(third, first)
    _close_logits(_next_logits(third), reference, dtype)
    answer = generate(third, "What is the capital of France?", None, [0.0], None, Sampling(12))[0]
    assert "Paris" in answer, answer


# ---------- a concept steers next-token probabilities ----------

@pytest.mark.real
def test_happy_concept_moves_positive_vs_negative_word_probabilities(lm, happy):
    smollm = lm
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
def test_batched_intensities_equal_sequential_generation(lm, happy, dtype):
    prompt, sampling, values = "Tell me about your weekend.", Sampling(20), [0.0, 0.3, -0.3]
    batched = generate(lm, prompt, happy, values, None, sampling)
    sequential = [generate(lm, prompt, happy, [x], None, sampling)[0] for x in values]
    assert hooks_left(lm) == 0
    assert all(t.strip() for t in batched), batched
    # steering changes the text, so the comparison is not between three copies of one text
    assert batched[1] != batched[0] and batched[2] != batched[0], batched
    if dtype == "float32":
        assert batched == sequential
        return
    # bf16: each row starts as its solo run does, and its first next-token logits agree
    for b, s in zip(batched, sequential):
        assert b.split()[:3] == s.split()[:3], (b, s)
    text = lm.chat(prompt)
    batch = encode(lm, [text] * len(values), padding_side="left")
    with steer(lm, happy, values), torch.inference_mode():
        rows = lm.model(**batch).logits[:, -1].float()
    for i, x in enumerate(values):
        with steer(lm, happy, x), torch.inference_mode():
            solo = lm.model(**encode(lm, [text])).logits[0, -1].float()
        _close_logits(rows[i], solo, dtype)


# ---------- positions="generated" inside a real generation ----------

@pytest.mark.real
def test_generated_positions_leave_the_prompt_alone_during_generation(smollm32, happy32):
    """Steering "generated" positions: while ``generate`` runs, the prompt's residuals
    (all but its last token, which predicts the first new one) are the unsteered ones,
    and every token from the last prompt token on is steered."""
    lm, layer = smollm32, happy32.default_layer
    text = lm.chat("Tell me about your weekend.")
    n_prompt = encode(lm, [text])["input_ids"].shape[1]
    seen: dict[str, list] = {}

    def tap(key):
        def hook(module, args, output):
            seen[key].append((output[0] if isinstance(output, tuple) else output).detach().clone())
        return hook

    typical_norms(lm)  # measured once, by a forward pass of its own: not inside the taps below
    texts = {}
    for key, positions, x in (("plain", "all", 0.0), ("generated", "generated", 1.0), ("all", "all", 1.0)):
        seen[key + "+1"] = []
        handle = lm.layers[layer + 1].register_forward_hook(tap(key + "+1"))  # what the steered layer passed on
        try:
            texts[key] = generate(lm, text, happy32, [x], [layer], Sampling(8), positions=positions, chat=False)[0]
        finally:
            handle.remove()
    plain, gen = seen["plain+1"], seen["generated+1"]
    assert plain[0].shape[1] == n_prompt  # the first call runs the whole prompt
    assert torch.equal(gen[0][:, : n_prompt - 1], plain[0][:, : n_prompt - 1])  # prompt untouched ...
    assert not torch.allclose(gen[0][:, n_prompt - 1], plain[0][:, n_prompt - 1])  # ... but its last token
    assert not torch.allclose(seen["all+1"][0][:, 0], plain[0][:, 0])  # "all" steers the prompt too
    assert texts["generated"] != texts["plain"] and texts["all"] != texts["plain"]
    assert hooks_left(lm) == 0


@pytest.fixture(scope="module")
def happy32(smollm32_module):
    return extract_concept(smollm32_module, from_preset("happy-sad", limit=16)).vector


@pytest.fixture(scope="module")
def smollm32_module():
    return real_model("smollm2-135m", "float32")


# ---------- the scheduler on a real model: different users, one batch, solo results ----------

@pytest.mark.real
def test_concurrent_requests_on_smollm_equal_their_solo_runs(smollm32, happy32):
    """Four prompts of different lengths, each with its own vector sign, intensity and
    layer, submitted at once: every text equals its request run alone (fp32)."""
    import threading

    jobs = [("Tell me about your weekend.", 0.6, 15), ("What is the capital of France?", -0.5, 12),
            ("Write a haiku about rain in the city at night.", 0.8, 18), ("Hi!", 0.4, 15)]
    alone = [generate(smollm32, p, happy32, [0.0, x], [layer], Sampling(24)) for p, x, layer in jobs]
    results, barrier = {}, threading.Barrier(len(jobs))

    def client(i, p, x, layer):
        barrier.wait()
        results[i] = generate(smollm32, p, happy32, [0.0, x], [layer], Sampling(24))

    threads = [threading.Thread(target=client, args=(i, *job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert [results[i] for i in range(len(jobs))] == alone
    assert all(a[0] != a[1] for a in alone)
    assert hooks_left(smollm32) == 0
