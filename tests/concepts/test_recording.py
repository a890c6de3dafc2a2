"""steer_ui.concepts.recording: batched, padding-correct activations of every layer, and typical norms."""

from __future__ import annotations

import pytest
import torch

from conftest import make_tiny
from steer_ui.concepts import recording
from steer_ui.concepts.recording import measure_norms, record, texts_hash, typical_norms
from steer_ui.errors import ContrastError
from steer_ui.models.tokens import encode


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    yield


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Tiny models share names across tests; start each test with an empty cache."""
    recording._CACHE.clear()
    yield


TEXTS = [
    "the happy day",
    "i am very sad and the night is not good",
    "you",
    "w1 w2 w3 w4 w5 w6 w7",
]


def _manual(lm, text: str) -> torch.Tensor:
    """Every layer's output for one unpadded text, via our own forward hooks: (layers, seq, d)."""
    outs = [None] * lm.n_layers

    def make(i):
        def hook(module, args, output):
            h = output[0] if isinstance(output, tuple) else output
            outs[i] = h[0].detach().clone()
        return hook

    handles = [layer.register_forward_hook(make(i)) for i, layer in enumerate(lm.layers)]
    try:
        ids = lm.tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            lm.model(**ids, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return torch.stack(outs)


@pytest.mark.parametrize("position", ["last", "mean"])
def test_batched_equals_alone(tiny_any, position):
    lm = tiny_any
    batched = record(lm, TEXTS, position)
    assert batched.shape == (len(TEXTS), lm.n_layers, lm.hidden_size)
    assert batched.dtype == torch.float32 and batched.device.type == "cpu"
    for i, text in enumerate(TEXTS):
        alone = record(lm, [text], position)
        assert torch.allclose(batched[i], alone[0], atol=1e-5), (lm.name, position, text)


def test_small_batch_size_equals_one_batch(tiny):
    full = record(tiny, TEXTS, "mean", batch_size=16)
    recording._CACHE.clear()
    chunked = record(tiny, TEXTS, "mean", batch_size=3)
    assert torch.allclose(full, chunked, atol=1e-5)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_last_and_mean_match_manual_hooks(arch):
    lm = make_tiny(arch)
    last = record(lm, TEXTS, "last")
    mean = record(lm, TEXTS, "mean")
    for i, text in enumerate(TEXTS):
        h = _manual(lm, text)  # (layers, seq, d)
        assert torch.allclose(last[i], h[:, -1], atol=1e-5)
        if h.shape[1] > 1:
            expected = h[:, 1:].mean(1)  # first token excluded
            assert torch.allclose(mean[i], expected, atol=1e-5)
            # ... and it really differs from a mean that includes the first token
            assert not torch.allclose(mean[i], h.mean(1), atol=1e-4)
        else:
            assert torch.allclose(mean[i], h[:, 0], atol=1e-5)  # one token: its only token


def test_last_layer_is_not_the_normed_hidden_state(tiny):
    """The recorded last layer is the raw residual, not hidden_states[-1] (final norm)."""
    acts = record(tiny, ["the happy day"], "last")
    ids = tiny.tokenizer("the happy day", return_tensors="pt")
    with torch.no_grad():
        hs = tiny.model(**ids, output_hidden_states=True).hidden_states
    assert torch.allclose(acts[0, 0], hs[1][0, -1], atol=1e-5)  # layer 0 output
    assert not torch.allclose(acts[0, -1], hs[-1][0, -1], atol=1e-3)


def test_starts_move_the_mean_window(tiny):
    text = TEXTS[1]
    h = _manual(tiny, text)
    got = record(tiny, [text, text], "mean", starts=[3, 0])
    assert torch.allclose(got[0], h[:, 3:].mean(1), atol=1e-5)
    assert torch.allclose(got[1], h[:, 1:].mean(1), atol=1e-5)  # start clamped to 1


SHARED = ["w1 w2 w3 w4 w5 the happy day", "w1 w2 w3 w4 w5 i am very sad", "w1 w2 w3 w4 w5 w6 w7"]


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gemma3", "gpt2"])
def test_shared_prefix_runs_once_and_changes_nothing(arch):
    """Texts sharing five tokens: the prefix runs as its own pass (batches + 1) and every
    read (last; mean with a window inside and outside the prefix) equals an unpadded run."""
    lm = make_tiny(arch)
    before = lm.forward_passes
    last = record(lm, SHARED, "last", batch_size=2)
    assert lm.forward_passes - before == 1 + 2
    starts = [2, 7, 3]  # a mean window starting inside the prefix: not shared
    mean = record(lm, SHARED, "mean", starts=starts)
    late_starts = [5, 6, 5]  # windows after the prefix: shared
    late = record(lm, SHARED, "mean", starts=late_starts)
    for i, text in enumerate(SHARED):
        h = _manual(lm, text)
        assert torch.allclose(last[i], h[:, -1], atol=1e-5)
        assert torch.allclose(mean[i], h[:, starts[i]:].mean(1), atol=1e-5)
        assert torch.allclose(late[i], h[:, late_starts[i]:].mean(1), atol=1e-5)


def test_shared_prefix_length():
    from steer_ui.concepts.recording import shared_prefix

    assert shared_prefix([[1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 7]]) == 5
    assert shared_prefix([[1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 6]]) == 4  # each keeps a token of its own
    assert shared_prefix([[1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 7]], cap=2) == 0  # under the minimum
    assert shared_prefix([[1, 2, 9], [1, 2, 8]], minimum=1) == 2
    assert shared_prefix([[1, 2], [3, 2]], minimum=1) == 0


def test_repeat_call_is_cached(tiny):
    texts = ["the good day", "the bad night", "a w5 w6"]
    before = tiny.forward_passes
    first = record(tiny, texts, "last")
    middle = tiny.forward_passes
    assert middle - before == 1
    second = record(tiny, texts, "last")
    assert tiny.forward_passes - middle == 0
    assert torch.equal(first, second)
    # A different position or other texts do run a forward pass.
    record(tiny, texts, "mean")
    assert tiny.forward_passes - middle == 1
    record(tiny, texts[:2], "mean")
    assert tiny.forward_passes - middle == 2


def test_batches_count_forward_passes(tiny):
    texts = [f"w{i} w{i + 1}" for i in range(10)]
    before = tiny.forward_passes
    record(tiny, texts, "last", batch_size=4)
    assert tiny.forward_passes - before == 3


def test_progress_reports(tiny):
    seen = []
    record(tiny, [f"w{i} w9" for i in range(5)], "last", batch_size=2,
           progress=lambda f, msg: seen.append(f))
    assert seen == pytest.approx([0.4, 0.8, 1.0])


def test_typical_norms(tiny_any):
    norms = typical_norms(tiny_any)
    assert norms.shape == (tiny_any.n_layers,)
    assert norms.dtype == torch.float32
    assert torch.isfinite(norms).all() and (norms > 0).all()


def test_typical_norms_is_median_of_token_norms(tiny):
    texts = ["the happy day is good", "i am very sad"]
    norms = measure_norms(tiny, texts)
    per_layer = [[] for _ in range(tiny.n_layers)]
    for text in texts:
        h = _manual(tiny, text)
        for i in range(tiny.n_layers):
            per_layer[i].append(h[i, 1:].norm(dim=-1))  # first token excluded
    expected = torch.stack([torch.cat(p).median() for p in per_layer])
    assert torch.allclose(norms, expected, atol=1e-4)


def test_text_longer_than_context(tiny):
    long_text = " ".join(["w1"] * 200)  # context is 128
    with pytest.raises(ContrastError, match=r"Text #2 is 200 tokens long, more than the model's context of 128"):
        record(tiny, ["the day", long_text], "last")
    with pytest.raises(ContrastError, match="context"):
        encode(tiny, [long_text])


def test_empty_list(tiny):
    with pytest.raises(ContrastError, match="No texts"):
        record(tiny, [], "last")


def test_unknown_position(tiny):
    with pytest.raises(ContrastError, match="Unknown read position 'first'"):
        record(tiny, ["the day"], "first")


def test_hooks_removed_after_error(tiny):
    with pytest.raises(ContrastError):
        record(tiny, ["the day", " ".join(["w1"] * 200)], "mean")
    assert sum(len(layer._forward_hooks) for layer in tiny.layers) == 0
    record(tiny, ["the night"], "mean")
    assert sum(len(layer._forward_hooks) for layer in tiny.layers) == 0


def test_texts_hash():
    assert texts_hash(["a", "b"]) == texts_hash(["a", "b"])
    assert texts_hash(["a", "b"]) != texts_hash(["ab"])
    assert texts_hash(["a", "b"]) != texts_hash(["b", "a"])
    assert len(texts_hash(["x"])) == 16


@pytest.mark.parametrize("position", ["last", "mean", "mean+last"])
def test_readers_index_on_the_hidden_states_device(position):
    from steer_ui.concepts.recording import READERS

    hidden = torch.zeros(2, 5, 4, device="meta")  # a layer on "another device" (see test_steering)
    lengths, starts = torch.tensor([5, 3]), torch.tensor([1, 1])  # on the CPU, like the batch
    out = READERS[position](hidden, lengths, starts)
    assert out.device.type == "meta" and out.shape[0] == 2


def test_token_norms_reader_on_another_device():
    from steer_ui.concepts.recording import _token_norms

    out = _token_norms(torch.zeros(2, 5, 4, device="meta"), torch.tensor([5, 3]), torch.tensor([5, 3]))
    assert out.device.type == "meta" and out.shape == (2, 5)


def test_out_of_memory_while_recording_is_a_clear_error(tiny, monkeypatch):
    from steer_ui.errors import ResourceError

    def boom(*a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(tiny.model, "forward", boom)
    with pytest.raises(ResourceError, match="Out of memory while recording activations: use fewer"):
        record(tiny, ["w1 w2 w3", "w4 w5"], "last")
    assert sum(len(layer._forward_hooks) for layer in tiny.layers) == 0
