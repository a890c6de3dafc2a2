"""Our GGUF control vectors in a real llama.cpp: the layer llama.cpp steers is the layer
we steer. The oracle is llama.cpp's own loader (``common_control_vector_load``) inside
``llama-completion``, built from the pinned llama-cpp-python sdist by `make test`.

llama.cpp runs the Q4_1 GGUF with its own kernels, we run the same weights dequantized
in fp32, so unsteered texts agree on most prompts but not bit for bit. The test therefore
compares *which* of our layers llama.cpp's steered text matches: a strong vector
exported for layer L must reproduce our text at L far better than at L-1 or L+1 (with
today's fix; the old ``direction.{L+1}`` files matched L+1).
"""

from __future__ import annotations

import subprocess
from dataclasses import replace

import pytest
import torch

from conftest import llama_tool, real_model, shared_prefix
from steer_ui.concepts.contrast import from_preset
from steer_ui.concepts.extraction import extract_concept
from steer_ui.concepts.files import export_gguf
from steer_ui.concepts.recording import typical_norms
from steer_ui.models import zoo
from steer_ui.steering.generation import Sampling, generate

pytestmark = pytest.mark.real

PROMPTS = ("Tell me about your weekend.", "Describe your morning.", "What did you eat today?")
TOKENS = 24


@pytest.fixture(scope="module")
def setup():
    """(llama-completion, the GGUF model file, SmolLM2 in fp32, its happy/sad vector)."""
    exe = llama_tool("llama-completion")
    lm = real_model("smollm2-135m", "float32")
    vector = extract_concept(lm, from_preset("happy-sad", 8)).vector
    return exe, zoo.gguf_file(zoo.get("smollm2-135m")), lm, vector


def _one_layer(vector, lm, layer: int, k: float, source: int | None = None):
    """``vector``'s direction of layer ``source`` (default ``layer``) placed at ``layer`` only,
    k x the layer's typical norm long, everything else zero."""
    src = layer if source is None else source
    d = torch.zeros_like(vector.directions)
    d[layer] = vector.unit(src) * float(typical_norms(lm)[src]) * k
    return replace(vector, directions=d, default_layer=layer)


def _llama(exe, model, text: str, cvec=None) -> str:
    cmd = [str(exe), "-m", str(model), "-p", text, "-n", str(TOKENS), "--temp", "0", "-t", "2", "-s", "0",
           "-no-cnv", "--no-warmup", "--no-display-prompt"]
    if cvec is not None:
        cmd += ["--control-vector", str(cvec)]
    out = subprocess.run(cmd, capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr.decode(errors="replace")[-2000:]
    return out.stdout.decode(errors="replace").rstrip()


def _ours(lm, text: str, vector, layer: int) -> str:
    return generate(lm, text, vector, [1.0], [layer], Sampling(TOKENS), mode="raw", chat=False)[0]


def test_zero_vector_changes_nothing_and_a_last_layer_vector_steers(setup, tmp_path):
    exe, model, lm, vector = setup
    last = lm.n_layers - 1
    zero = export_gguf(replace(vector, directions=torch.zeros_like(vector.directions)), tmp_path / "zero.gguf",
                       "llama", layers=[last])
    strong = export_gguf(_one_layer(vector, lm, last, 1.0), tmp_path / "last.gguf", "llama", layers=[last])
    for prompt in PROMPTS[:2]:
        text = lm.chat(prompt)
        plain = _llama(exe, model, text)
        assert plain.strip()
        assert _llama(exe, model, text, zero) == plain
        steered = _llama(exe, model, text, strong)
        print(f"\n{prompt!r}\n  llama.cpp plain:   {plain!r}\n  llama.cpp steered: {steered!r}")
        assert steered != plain


@pytest.mark.parametrize("layer,k", [(15, 0.5), (29, 1.0)])
def test_llama_cpp_steers_the_layer_we_steer(setup, tmp_path, layer, k):
    exe, model, lm, vector = setup
    v = _one_layer(vector, lm, layer, k)
    gguf = export_gguf(v, tmp_path / f"layer{layer}.gguf", "llama", layers=[layer])
    neighbours = [n for n in (layer - 1, layer, layer + 1) if n < lm.n_layers]
    agree = dict.fromkeys(neighbours, 0)
    for prompt in PROMPTS:
        text = lm.chat(prompt)
        theirs = _llama(exe, model, text, gguf)
        for n in neighbours:  # the same vector, steered by us at each neighbouring layer
            agree[n] += shared_prefix(lm, theirs, _ours(lm, text, _one_layer(vector, lm, n, k, source=layer), n))
    print(f"\nlayer {layer}, k {k}: tokens llama.cpp's steered text shares with ours, by our layer: {agree}")
    assert agree[layer] >= len(PROMPTS) * 6, agree
    assert all(agree[layer] >= 2 * agree[n] + 3 for n in neighbours if n != layer), agree


def test_an_export_with_our_intensity_baked_in_steers_llama_cpp_like_our_relative_mode(setup, tmp_path):
    """`export --layer 15 --intensity 0.5` then llama.cpp's plain --control-vector (strength
    1) against the user's own path: our relative steering at 0.5 on layer 15."""
    from steer_ui.app.cli import main
    from steer_ui.concepts.files import save_vector

    exe, model, lm, vector = setup
    path = save_vector(vector, tmp_path / "v.safetensors", "llama")
    gguf = tmp_path / "baked.gguf"
    assert main(["export", "--vector", str(path), "--gguf", str(gguf), "--layer", "15", "--intensity", "0.5",
                 "--model", "smollm2-135m", "--dtype", "float32"]) == 0
    agree = 0
    for prompt in PROMPTS:
        text = lm.chat(prompt)
        ours = generate(lm, text, vector, [0.5], [15], Sampling(TOKENS), mode="relative", chat=False)[0]
        agree += shared_prefix(lm, _llama(exe, model, text, gguf), ours)
    print(f"\nbaked relative 0.5 at layer 15: {agree} tokens shared with ours over {len(PROMPTS)} prompts")
    assert agree >= len(PROMPTS) * 6, agree
