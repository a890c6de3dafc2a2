"""Shared fixtures: tiny random models of several architectures, real bundled models,
and a guard that fails any test touching a non-loopback address."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The suite's exact comparisons are of the torch engine; tests/steering/test_engines.py
# asks for llama.cpp (and auto) by name.
os.environ.setdefault("STEER_UI_ENGINE", "torch")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

_real_connect = socket.socket.connect


def _is_loopback(address) -> bool:
    if isinstance(address, (str, bytes)):  # unix socket path
        return True
    host = address[0]
    if host in ("localhost", "") or host.startswith("127.") or host == "::1":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self, address):
    if not _is_loopback(address):
        raise AssertionError(f"test tried to reach a non-loopback address: {address!r}")
    return _real_connect(self, address)


@pytest.fixture(scope="module")
def one_thread_module():
    """Tiny models run fastest on one thread, and don't stall when the CPUs are busy."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every test: only loopback connections are allowed."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    yield


# ---------- tiny random models built in code ----------

def _tiny_config(arch: str):
    from transformers import Gemma3TextConfig, GPT2Config, LlamaConfig, Qwen2Config

    common = dict(vocab_size=320, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                  num_key_value_heads=2, intermediate_size=64, max_position_embeddings=128)
    if arch == "llama":
        return LlamaConfig(**common)
    if arch == "qwen2":
        return Qwen2Config(**common)
    if arch == "gemma3":
        return Gemma3TextConfig(**common, head_dim=8, sliding_window=64)
    if arch == "gpt2":
        return GPT2Config(vocab_size=320, n_embd=32, n_layer=3, n_head=4, n_positions=128, bos_token_id=1, eos_token_id=1)
    raise ValueError(arch)


def tiny_tokenizer():
    """A word-level tokenizer built in code (no files, no network)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<pad>", "<eos>", "<unk>"] + [f"w{i}" for i in range(200)] + \
        "the a happy sad good bad day night i am you are is was very not and of to in".split()
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", unk_token="<unk>")


def make_tiny(arch: str = "llama", pad: bool = True, seed: int = 0):
    """A ``LoadedModel`` around a random tiny model of ``arch`` (float32, CPU)."""
    from transformers import AutoModelForCausalLM

    from steer_ui.models.layers import find_layers
    from steer_ui.models.loading import LoadedModel, ModelSpec
    from steer_ui.models.tokens import ensure_pad_token

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(_tiny_config(arch)).eval()
    tok = tiny_tokenizer()
    if pad:
        ensure_pad_token(tok)
    model.generation_config.pad_token_id = tok.pad_token_id
    return LoadedModel(name=f"tiny-{arch}", spec=ModelSpec(f"tiny-{arch}"), model=model, tokenizer=tok,
                       layers=find_layers(model), device=torch.device("cpu"), dtype=torch.float32)


@pytest.fixture(params=["llama", "qwen2", "gemma3", "gpt2"])
def tiny_any(request):
    return make_tiny(request.param)


@pytest.fixture
def tiny():
    return make_tiny("llama")


# ---------- real bundled models (installed by `make test`) ----------

_REAL: dict = {}

# The dtype real-model tests run in when they don't pin one: STEER_UI_DTYPE, else the
# machine's default (bf16 on CPUs with native bf16, fp32 elsewhere). Tests that assert
# exact equality pin float32; `make test` also runs the dtype-sensitive ones in both.
DTYPES = ("float32", "bfloat16")


def real_model(name: str, dtype: str | None = None):
    """A bundled model, loaded once per test session and dtype; skips when not installed."""
    from steer_ui.models import zoo
    from steer_ui.models.loading import ModelSpec, load_model

    if not zoo.is_installed(zoo.get(name)):
        pytest.skip(f"{name} is not installed ({zoo.get(name).install_command()})")
    dtype = dtype or os.environ.get("STEER_UI_DTYPE") or None
    if (name, dtype) not in _REAL:
        _REAL[name, dtype] = load_model(ModelSpec(name, device="cpu", dtype=dtype))
    return _REAL[name, dtype]


@pytest.fixture
def smollm():
    return real_model("smollm2-135m")


@pytest.fixture
def smollm32():
    """SmolLM2 in float32: for tests that assert exact equality (only fp32 is exact)."""
    return real_model("smollm2-135m", "float32")


@pytest.fixture
def qwen05():
    return real_model("qwen2.5-0.5b")


@pytest.fixture
def gemma32():
    """Gemma 3 270M (sliding-window attention, no chat template) in float32."""
    return real_model("gemma3-270m", "float32")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TINY_CONTRAST_LISTS = ("the happy day\ni am very happy\nyou are good", "the sad night\ni am very sad\nyou are bad")


def tiny_pair():
    """A session's pair of tiny random models of two families (the app's unit tests)."""
    from steer_ui.app.pool import Pair

    wb = Pair()
    wb.models["llm"], wb.models["slm"] = make_tiny("qwen2", seed=1), make_tiny("llama")
    return wb


def random_vector(lm, name="mine", layer=1):
    """A fixed random vector for ``lm``."""
    import torch

    from steer_ui.concepts.vectors import ConceptVector

    g = torch.Generator().manual_seed(3)
    return ConceptVector(torch.randn(lm.n_layers, lm.hidden_size, generator=g), lm.name, name=name,
                         default_layer=layer)


def shared_prefix(lm, a: str, b: str) -> int:
    """Tokens the two texts share from the start (engines and llama.cpp's tool agree on
    which layer or how far, not token for token)."""
    ta, tb = (lm.tokenizer(t, add_special_tokens=False)["input_ids"] for t in (a, b))
    n = 0
    while n < min(len(ta), len(tb)) and ta[n] == tb[n]:
        n += 1
    return n


@contextmanager
def served_app(llm: str = "qwen2.5-0.5b", slm: str = "smollm2-135m", dtype: str | None = None, slm_model=None):
    """The app as ``app.py`` serves it (the UI mounted on the API's FastAPI app), in this
    process on a free 127.0.0.1 port with real models: (model pool, Blocks, url).
    ``slm_model``: a loaded model to serve as the SLM instead (another engine, say)."""
    from steer_ui.app.api import ApiConfig
    from steer_ui.app.pool import ModelPool
    from steer_ui.app.published import VectorStore
    from steer_ui.app.server import make_app, running

    wb = ModelPool(device="cpu", dtype=dtype)
    wb.put("llm", real_model(llm, dtype))
    wb.put("slm", slm_model or real_model(slm, dtype))
    app = make_app(wb, VectorStore(), ApiConfig())
    demo = next(r.app.blocks for r in app.routes if getattr(getattr(r, "app", None), "blocks", None))
    with running(app) as url:
        yield wb, demo, url + "/"


# ---------- llama.cpp, built from the pinned llama-cpp-python sdist by `make test` ----------

LLAMA_CPP = Path(sys.prefix) / "llama.cpp"  # scripts/llamacpp.sh builds into the venv


def llama_tool(name: str = "llama-completion") -> Path:
    """A llama.cpp tool; skips (saying why) only when the build was impossible here."""
    exe = LLAMA_CPP / "bin" / name
    if exe.is_file():
        return exe
    failed = LLAMA_CPP / "BUILD_FAILED"
    if failed.is_file():
        pytest.skip(f"llama.cpp could not be built on this machine: {failed.read_text().strip()}")
    message = f"{exe} is missing: `make test` builds it (scripts/llamacpp.sh {Path(sys.prefix)})"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``python -m steer_ui argv`` in-process: (exit status, stdout, stderr)."""
    import contextlib
    import io

    from steer_ui.app import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(argv)
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture
def isolated_cache(monkeypatch, tmp_path):
    """Map and activation caches of this test only: disk caches in tmp_path, and an empty
    in-memory activation cache (tiny models share names, so a stale entry would match)."""
    from collections import OrderedDict

    from steer_ui.concepts import recording

    monkeypatch.setenv("STEER_UI_CACHE", str(tmp_path))
    monkeypatch.setattr(recording, "_CACHE", OrderedDict())
