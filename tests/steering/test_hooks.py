"""steer_ui.steering.hooks: exact arithmetic of the hooks, clean removal, input checks."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import make_tiny
from steer_ui.concepts.recording import typical_norms
from steer_ui.concepts.vectors import ConceptVector
from steer_ui.errors import IntensityError, LayerError, VectorError
from steer_ui.steering import hooks as steering
from steer_ui.steering.hooks import check_intensities, check_layers, hooks_left, steer


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    yield


PROMPT = "i am very happy and the day is good"


def _vector(lm, seed=0, scale=1.0, default_layer=1):
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(lm.n_layers, lm.hidden_size, generator=g) * scale
    return ConceptVector(directions=d, model=lm.name, default_layer=default_layer)


def _ids(lm, texts):
    lm.tokenizer.padding_side = "right"
    return lm.tokenizer(texts, return_tensors="pt", padding=True)


def _logits(lm, batch):
    with torch.no_grad():
        return lm.model(**batch, use_cache=False).logits


class _Tap:
    """Captures what layer ``k`` passes on: the input of layer k+1 (a pre-hook)."""

    def __init__(self, lm, k):
        self.value = None
        self.handle = lm.layers[k + 1].register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        h = args[0] if args else kwargs["hidden_states"]
        self.value = h.detach().clone()

    def remove(self):
        self.handle.remove()


def _captured(lm, k, batch, ctx=None):
    tap = _Tap(lm, k)
    try:
        if ctx is None:
            _logits(lm, batch)
        else:
            with ctx:
                _logits(lm, batch)
    finally:
        tap.remove()
    return tap.value


# ---------- exact arithmetic ----------

@pytest.mark.parametrize("arch", ["llama", "gpt2"])
@pytest.mark.parametrize("k", [0, 1])
def test_raw_mode_adds_exactly(arch, k):
    lm = make_tiny(arch)
    v = _vector(lm)
    batch = _ids(lm, [PROMPT])
    original = _captured(lm, k, batch)
    patched = _captured(lm, k, batch, steer(lm, v, 0.75, layers=k, mode="raw"))
    expected = original + 0.75 * v.directions[k]
    assert torch.allclose(patched, expected, atol=1e-6, rtol=0)
    assert not torch.allclose(patched, original)
    assert hooks_left(lm) == 0


def test_relative_mode_uses_typical_norm(tiny):
    v = _vector(tiny, scale=3.0)
    k = 1
    batch = _ids(tiny, [PROMPT])
    original = _captured(tiny, k, batch)
    patched = _captured(tiny, k, batch, steer(tiny, v, -1.5, layers=k, mode="relative"))
    unit = v.directions[k] / v.directions[k].norm()
    norm = float(typical_norms(tiny)[k])
    assert norm > 0
    expected = original + (-1.5) * unit * norm
    assert torch.allclose(patched, expected, atol=1e-5, rtol=0)
    # The added vector has exactly the requested length, whatever the stored scale.
    added = (patched - original)[0, 3]
    assert float(added.norm()) == pytest.approx(1.5 * norm, rel=1e-5)


def test_relative_mode_ignores_stored_scale(tiny):
    k = 1
    batch = _ids(tiny, [PROMPT])
    small, big = _vector(tiny, scale=0.01), _vector(tiny, scale=100.0)
    original = _captured(tiny, k, batch)
    a = _captured(tiny, k, batch, steer(tiny, small, 1.0, layers=k))
    b = _captured(tiny, k, batch, steer(tiny, big, 1.0, layers=k))
    assert torch.allclose(a, b, atol=1e-5)
    # ... and both really steer, by the layer's typical norm
    added = (a - original)[0, 3].norm()
    assert float(added) == pytest.approx(float(typical_norms(tiny)[k]), rel=1e-4)


def test_adaptive_mode_scales_with_residual_norm(tiny):
    v = _vector(tiny)
    k = 0
    batch = _ids(tiny, [PROMPT])
    original = _captured(tiny, k, batch)
    patched = _captured(tiny, k, batch, steer(tiny, v, 0.5, layers=k, mode="adaptive"))
    unit = v.unit(k)
    expected = original + 0.5 * original.norm(dim=-1, keepdim=True) * unit
    assert torch.allclose(patched, expected, atol=1e-5, rtol=1e-5)
    added = (patched - original)[0].norm(dim=-1)  # per token
    token_norms = original[0].norm(dim=-1)
    assert torch.allclose(added, 0.5 * token_norms, rtol=1e-4)
    assert float(token_norms.std()) > 0  # the push really differs per token


def test_several_layers_are_all_hooked(tiny):
    v = _vector(tiny)
    batch = _ids(tiny, [PROMPT])
    original0 = _captured(tiny, 0, batch)
    with steer(tiny, v, 1.0, layers=[0, 2, 2], mode="raw"):
        assert hooks_left(tiny) == 2
        assert len(tiny.layers[1]._forward_hooks) == 0
        patched0 = _captured(tiny, 0, batch)
    assert torch.allclose(patched0, original0 + v.directions[0], atol=1e-6)
    assert hooks_left(tiny) == 0


def test_default_layer_is_used(tiny):
    v = _vector(tiny, default_layer=2)
    with steer(tiny, v, 1.0):
        assert [len(layer._forward_hooks) for layer in tiny.layers] == [0, 0, 1]


def test_zero_intensity_is_bit_identical(tiny_any):
    lm = tiny_any
    v = _vector(lm)
    batch = _ids(lm, [PROMPT, "the sad night"])
    base = _logits(lm, batch)
    for mode in steering.MODES:
        with steer(lm, v, 0.0, layers=1, mode=mode):
            assert hooks_left(lm) == 0
            same = _logits(lm, batch)
        assert torch.equal(base, same)
    with steer(lm, v, [0, 0]):
        assert torch.equal(base, _logits(lm, batch))
    with steer(lm, None, 2.0):
        assert torch.equal(base, _logits(lm, batch))


def test_nonzero_intensity_changes_logits(tiny_any):
    lm = tiny_any
    v = _vector(lm)
    batch = _ids(lm, [PROMPT])
    base = _logits(lm, batch)
    with steer(lm, v, 1.0, layers=1):
        steered = _logits(lm, batch)
    assert not torch.allclose(base, steered, atol=1e-4)
    assert hooks_left(lm) == 0


# ---------- hooks come off ----------

def test_hooks_removed_after_normal_exit(tiny):
    v = _vector(tiny)
    with steer(tiny, v, 1.0, layers=[0, 1, 2]):
        assert hooks_left(tiny) == 3
    assert hooks_left(tiny) == 0


def test_hooks_removed_after_exception(tiny):
    v = _vector(tiny)
    with pytest.raises(RuntimeError, match="boom"):
        with steer(tiny, v, 1.0, layers=[0, 1]):
            assert hooks_left(tiny) == 2
            raise RuntimeError("boom")
    assert hooks_left(tiny) == 0
    # and the lock is free again
    assert tiny.lock.acquire(blocking=False)
    tiny.lock.release()


def test_hooks_removed_after_exception_in_forward(tiny):
    v = _vector(tiny)
    with pytest.raises(Exception):
        with steer(tiny, v, 1.0, layers=1):
            tiny.model(input_ids=torch.tensor([[10_000]]))  # id out of the vocabulary
    assert hooks_left(tiny) == 0


def test_hooks_removed_when_setup_fails(tiny):
    v = _vector(tiny)
    with pytest.raises(LayerError):
        with steer(tiny, v, 1.0, layers=[0, 7]):
            pass
    assert hooks_left(tiny) == 0


# ---------- per-row intensities and positions ----------

def test_per_row_intensities(tiny):
    v = _vector(tiny)
    batch = _ids(tiny, [PROMPT, PROMPT])
    base = _logits(tiny, batch)
    with steer(tiny, v, [0.0, 1.0], layers=1):
        rows = _logits(tiny, batch)
    assert torch.allclose(rows[0], base[0], atol=1e-5)
    assert not torch.allclose(rows[1], base[1], atol=1e-3)
    with steer(tiny, v, 1.0, layers=1):
        both = _logits(tiny, batch)
    assert torch.allclose(rows[1], both[1], atol=1e-5)


def test_generated_positions_leave_prompt_untouched(tiny):
    v = _vector(tiny)
    batch = _ids(tiny, [PROMPT])
    n = batch["input_ids"].shape[1]
    assert n >= 4
    base = _logits(tiny, batch)
    with steer(tiny, v, 1.0, layers=1, positions="generated", prompt_length=n):
        steered = _logits(tiny, batch)
    assert torch.equal(steered[:, : n - 1], base[:, : n - 1])
    assert not torch.allclose(steered[:, n - 1], base[:, n - 1], atol=1e-3)
    with steer(tiny, v, 1.0, layers=1, positions="all"):
        everywhere = _logits(tiny, batch)
    assert not torch.allclose(everywhere[:, 0], base[:, 0], atol=1e-3)
    # steering the prompt too changes what the last position attends to
    assert not torch.allclose(everywhere[:, n - 1], steered[:, n - 1], atol=1e-4)


def test_hook_offset_across_cached_calls(tiny):
    """Positions count across KV-cached calls: a later 1-token call is steered."""
    delta = torch.ones(1, tiny.hidden_size)
    hook = steering.make_hook(delta, "raw", start=5)
    h1 = torch.zeros(1, 4, tiny.hidden_size)
    assert hook(None, (), (h1,)) is None  # positions 0..3: untouched
    assert hook(None, (), (torch.zeros(1, 1, tiny.hidden_size),)) is None  # position 4
    out = hook(None, (), (torch.zeros(1, 1, tiny.hidden_size), "extra"))  # position 5
    assert out[1] == "extra"
    assert torch.equal(out[0], torch.ones(1, 1, tiny.hidden_size))
    # A fresh hook with start inside the first call.
    hook = steering.make_hook(delta, "raw", start=2)
    out = hook(None, (), torch.zeros(1, 4, tiny.hidden_size))
    assert out[:, :2].abs().sum() == 0 and torch.equal(out[:, 2:], torch.ones(1, 2, tiny.hidden_size))


# ---------- bad inputs ----------

@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -math.inf, 1e6, "abc", None])
def test_bad_intensity(tiny, bad):
    v = _vector(tiny)
    with pytest.raises(IntensityError):
        with steer(tiny, v, bad):
            pass
    with pytest.raises(IntensityError):
        check_intensities([0.5, bad])
    assert hooks_left(tiny) == 0


def test_intensity_messages():
    with pytest.raises(IntensityError, match="'abc' is not a number"):
        check_intensities(["abc"])
    with pytest.raises(IntensityError, match="not finite"):
        check_intensities([float("nan")])
    with pytest.raises(IntensityError, match=r"beyond \+-1000"):
        check_intensities([1001])
    assert check_intensities(["0.5", 2, -1000]) == [0.5, 2.0, -1000.0]


@pytest.mark.parametrize("bad", [3, -1, [0, 3], [], (), "1", [1.0]])
def test_bad_layers(tiny, bad):
    v = _vector(tiny)
    with pytest.raises(LayerError):
        with steer(tiny, v, 1.0, layers=bad):
            pass
    assert hooks_left(tiny) == 0


def test_layer_messages():
    with pytest.raises(LayerError, match=r"Layer 5 is out of range: this model has layers 0\.\.2"):
        check_layers(5, 3)
    with pytest.raises(LayerError, match="No layer chosen"):
        check_layers([], 3)
    assert check_layers([2, 0, 2], 3) == [0, 2]
    assert check_layers(range(1, 3), 3) == [1, 2]


def test_wrong_hidden_size(tiny):
    other = make_tiny("gpt2")
    v = ConceptVector(directions=torch.randn(3, 16), model="big-model", name="happy", default_layer=1)
    with pytest.raises(VectorError) as info:
        with steer(tiny, v, 1.0):
            pass
    msg = str(info.value)
    assert "big-model" in msg and tiny.name in msg and "'happy'" in msg
    assert "3 layers x 16" in msg and "3 layers x 32" in msg
    assert hooks_left(tiny) == 0
    # right hidden size but wrong layer count
    v2 = ConceptVector(directions=torch.randn(5, 32), model=other.name, default_layer=1)
    with pytest.raises(VectorError, match=r"5 layers x 32.*tiny-llama has 3 layers x 32"):
        steering.check_fits(v2, tiny)


def test_bad_mode_and_positions(tiny):
    v = _vector(tiny)
    with pytest.raises(IntensityError, match="Unknown intensity mode 'loud'"):
        with steer(tiny, v, 1.0, mode="loud"):
            pass
    with pytest.raises(IntensityError, match="Unknown positions 'some'"):
        with steer(tiny, v, 1.0, positions="some"):
            pass


def test_deltas_shapes(tiny):
    v = _vector(tiny)
    d = steering.deltas(tiny, [v, v, v], [0.0, 1.0, -2.0], 1, "raw")
    assert d.shape == (3, tiny.hidden_size)
    assert torch.equal(d[0], torch.zeros(tiny.hidden_size))
    assert torch.allclose(d[2], -2 * v.directions[1])
    a = steering.deltas(tiny, [v], [1.0], 1, "adaptive")
    assert float(a[0].norm()) == pytest.approx(1.0, rel=1e-5)


def test_scalar_intensity_types(tiny):
    """numpy and 0-d tensor scalars count as one intensity; junk names itself."""
    import numpy as np

    v = _vector(tiny)
    batch = _ids(tiny, [PROMPT])
    with steer(tiny, v, 1.0, layers=1, mode="raw"):
        ref = _logits(tiny, batch)
    for value in (np.float32(1.0), np.float64(1.0), torch.tensor(1.0), "1.0"):
        with steer(tiny, v, value, layers=1, mode="raw"):
            assert hooks_left(tiny) == 1
            assert torch.allclose(_logits(tiny, batch), ref, atol=1e-6)
    with pytest.raises(IntensityError, match="'abc' is not a number"):
        with steer(tiny, v, "abc"):
            pass
    with pytest.raises(IntensityError, match="None is not a number"):
        with steer(tiny, v, None):
            pass
    assert hooks_left(tiny) == 0


def test_per_row_vectors(tiny):
    """A vector per row: a None row stays unsteered, each other row gets its own vector."""
    v, w = _vector(tiny, seed=0), _vector(tiny, seed=1)
    batch = _ids(tiny, [PROMPT, PROMPT, PROMPT])
    base = _captured(tiny, 1, batch)
    got = _captured(tiny, 1, batch, steer(tiny, [None, v, w], [1.0, 1.0, -0.5], layers=1, mode="raw"))
    assert torch.allclose(got[0], base[0], atol=1e-6)
    assert torch.allclose(got[1], base[1] + v.directions[1], atol=1e-6)
    assert torch.allclose(got[2], base[2] - 0.5 * w.directions[1], atol=1e-6)
    assert hooks_left(tiny) == 0
    with pytest.raises(VectorError, match="2 vectors for 3 intensities"):
        with steer(tiny, [v, w], [1.0, 1.0, 1.0]):
            pass


# ---------- device maps: what a hook adds goes to the hidden state's own device and dtype ----------

@pytest.mark.parametrize("mode", ["relative", "raw", "adaptive"])
def test_hook_puts_its_delta_on_the_hidden_states_device_and_dtype(mode):
    """With ``--device-map`` layers sit on different devices; ``deltas`` lives on the
    model's first device. The "meta" device stands in for a second device here: adding
    a CPU tensor to a meta tensor fails, as cuda:0 + cuda:1 would."""
    delta = torch.tensor([[1.0, 2.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.5]])  # (rows, d) on the CPU
    hook = steering.make_hook(delta, mode, 0)
    values = torch.arange(24, dtype=torch.float16).reshape(2, 3, 4) / 8
    for hidden in (torch.zeros(2, 3, 4, device="meta", dtype=torch.bfloat16), values):
        for output in (hidden, (hidden, "cache")):  # tensor and tuple layer outputs alike
            out = hook(None, (), output)
            steered = out[0] if isinstance(out, tuple) else out
            assert steered.device == hidden.device and steered.dtype == hidden.dtype
            assert steered.shape == hidden.shape
            if isinstance(out, tuple):
                assert out[1] == "cache"
            if hidden.device.type == "meta":
                continue  # no values on "meta": the check above is the point
            push = delta[:, None, :] * (hidden.float().norm(dim=-1, keepdim=True) if mode == "adaptive" else 1)
            assert torch.allclose(steered.float(), hidden.float() + push, atol=1e-2)


def test_fan_out_hook_on_another_device():
    hook = steering.make_fanout_hook(torch.ones(3, 4), "relative")
    out = hook(None, (), torch.zeros(1, 2, 4, device="meta"))
    assert out.device.type == "meta" and out.shape == (3, 2, 4)


def test_as_raw_at_one_adds_what_relative_adds_at_its_intensity(tiny):
    """The export scaling (``export --intensity``): raw 1.0 of ``as_raw(v, x)`` == relative x of v."""
    from steer_ui.steering.hooks import as_raw

    v = _vector(tiny, scale=3.0)
    batch = _ids(tiny, [PROMPT])
    for layer in range(tiny.n_layers - 1):  # the tap reads the next layer's input
        relative = _captured(tiny, layer, batch, steer(tiny, v, -0.7, layers=layer, mode="relative"))
        raw = _captured(tiny, layer, batch, steer(tiny, as_raw(tiny, v, -0.7), 1.0, layers=layer, mode="raw"))
        assert torch.allclose(raw, relative, atol=1e-5, rtol=0)
    with pytest.raises(IntensityError):
        as_raw(tiny, v, float("nan"))
