"""``ModelSpec`` -> ``LoadedModel``: what to load and how, and the model ready for steering.

A spec names a bundled model (``smollm2-135m``), a local folder, a ``.gguf`` file or a
Hub id (the only case that touches the network, and only when the user asks for it).
GGUF models (bundled or not) are dequantized once and cached as safetensors.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..errors import ModelError
from . import zoo
from .chat import format_chat, format_messages
from .devices import choose_device, choose_dtype
from .layers import find_layers
from .tokens import ensure_pad_token

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class ModelSpec:
    """What to load and how. ``source``: short name, folder, .gguf file or Hub id."""

    source: str
    device: str | None = None  # cuda / mps / cpu; None picks the best available
    dtype: str | None = None  # bfloat16 / float16 / float32; None picks per device
    device_map: str | None = None  # "auto" shards over GPUs (needs accelerate)
    layers_path: str | None = None  # e.g. "model.layers" when discovery fails
    trust_remote_code: bool = False  # off unless the user asks: it runs Hub code
    engine: str = "torch"  # what generates: torch, llamacpp, or auto (steering.engines)

    def kind(self) -> str:
        """One of bundled / gguf / folder / hub; ``ModelError`` when it is none."""
        src = self.source.strip()
        if not src:
            raise ModelError("No model given. Pick a bundled model, e.g. smollm2-135m.")
        if src in zoo.BUNDLED:
            return "bundled"
        path = Path(src).expanduser()
        if path.is_file() and path.suffix == ".gguf":
            return "gguf"
        if path.is_dir():
            if not (path / "config.json").is_file():
                raise ModelError(
                    f"{src!r} is a folder but not a model: it has no config.json. "
                    "Point to a folder saved with save_pretrained, or to a .gguf file."
                )
            return "folder"
        if path.exists():
            raise ModelError(f"{src!r} is a file but not a .gguf model file.")
        parts = src.split("/")
        if len(parts) == 2 and all(parts) and " " not in src:
            return "hub"
        zoo.get(src)  # raises with the list of bundled names
        raise ModelError(f"{src!r} is not a bundled model, a file, a folder or a Hub id.")


@dataclass
class LoadedModel:
    """A model ready for steering. ``lock`` guards hooks and generation."""

    name: str
    spec: ModelSpec
    model: nn.Module
    tokenizer: object
    layers: nn.ModuleList
    device: torch.device
    dtype: torch.dtype
    load_seconds: float = 0.0
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    # Forward passes run for recording (benchmarks and tests read it: re-use costs none).
    forward_passes: int = 0
    # Per-layer typical residual norms, measured once by ``concepts.recording.typical_norms``.
    norms: torch.Tensor | None = field(default=None, repr=False)
    # Its batching scheduler (``steering.scheduler.for_model`` makes it on first use).
    scheduler: object | None = field(default=None, repr=False)
    # The generation engine (``steering.engines.engine_of`` decides on first use), the
    # llama.cpp scheduler when that engine runs, and why llama.cpp is off if it is.
    engine: str | None = None
    llama_scheduler: object | None = field(default=None, repr=False)
    engine_note: str = ""

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def hidden_size(self) -> int:
        cfg = self.model.config.get_text_config() if hasattr(self.model.config, "get_text_config") else self.model.config
        return int(getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd"))

    @property
    def family(self) -> str:
        # config.architectures is None for GGUF loads; model_type is always there.
        return str(self.model.config.model_type)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def memory_bytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.model.parameters())

    def facts(self) -> dict:
        """What the UI shows about this model."""
        return {
            "name": self.name, "family": self.family,
            "params": f"{self.n_params() / 1e6:.0f}M", "layers": self.n_layers,
            "hidden size": self.hidden_size, "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "memory": f"{self.memory_bytes() / 2**20:.0f} MiB",
            "load time": f"{self.load_seconds:.1f} s",
        }

    def chat(self, user: str, system: str | None = None, assistant_prefix: str = "") -> str:
        """``user`` as the model's chat prompt, ready for the assistant to answer."""
        return format_chat(self.tokenizer, user, system, assistant_prefix)

    def chat_messages(self, messages: list[dict]) -> str:
        """A conversation (``[{"role", "content"}]``) as the model's prompt text."""
        return format_messages(self.tokenizer, messages)



def load_model(spec: ModelSpec, progress: Progress | None = None) -> LoadedModel:
    """Load ``spec`` and wrap it; raises ``ModelError`` with a fix on any failure."""
    progress = progress or (lambda f, m: None)
    kind = spec.kind()
    device = choose_device(spec.device)
    dtype = choose_dtype(device, spec.dtype)
    start = time.perf_counter()
    progress(0.05, f"loading {spec.source} ({kind})")
    try:
        model, tok = _LOADERS[kind](spec, dtype, progress)
    except torch.OutOfMemoryError as exc:
        raise ModelError(f"Out of memory while loading {spec.source}: try a smaller model, "
                         "--dtype bfloat16, or --device-map auto.") from exc
    if spec.device_map is None:
        model = model.to(device)
    model.eval()
    ensure_pad_token(tok)
    model.generation_config.pad_token_id = tok.pad_token_id
    layers = find_layers(model, spec.layers_path)
    progress(1.0, "ready")
    return LoadedModel(
        name=spec.source, spec=spec, model=model, tokenizer=tok, layers=layers,
        device=next(model.parameters()).device, dtype=dtype,
        load_seconds=time.perf_counter() - start,
    )


def _auto(path_or_id, dtype, spec: ModelSpec, **kw):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    common = {"trust_remote_code": spec.trust_remote_code, **kw}
    tok = AutoTokenizer.from_pretrained(path_or_id, **common)
    model = AutoModelForCausalLM.from_pretrained(
        path_or_id, dtype=dtype, device_map=spec.device_map, **common
    )
    return model, tok


def _load_folder(spec: ModelSpec, dtype, progress):
    return _auto(str(Path(spec.source).expanduser()), dtype, spec, local_files_only=True)


def _load_hub(spec: ModelSpec, dtype, progress):
    try:
        return _auto(spec.source, dtype, spec)
    except OSError as exc:
        raise ModelError(
            f"Could not fetch {spec.source!r} from the Hugging Face Hub ({exc.__class__.__name__}). "
            "Check the id and your network, or use a bundled model or a local folder."
        ) from exc


def _load_bundled(spec: ModelSpec, dtype, progress):
    model = zoo.get(spec.source)

    def joined():  # the join is the first tenth of a first load
        return zoo.gguf_file(model, lambda f, m: progress(0.02 + 0.08 * f, m))

    loaded = _cached_gguf(spec, dtype, progress, model.name, joined, model.sha256)
    zoo.drop_joined(model)  # the dense copy serves from now on; the parts can join again if needed
    return loaded


def _load_gguf(spec: ModelSpec, dtype, progress):
    path = Path(spec.source).expanduser().resolve()
    stat = path.stat()
    key = f"{path.stem}-{stat.st_size}-{int(stat.st_mtime)}"
    return _cached_gguf(spec, dtype, progress, key, lambda: path, key)


def _cached_gguf(spec, dtype, progress, name: str, locate, source_id: str):
    """Dense cache if complete, else dequantize the GGUF once and cache the result."""
    folder = zoo.dense_dir(name, str(dtype).removeprefix("torch."))
    if zoo.dense_cache_ok(folder):
        try:
            return _auto(str(folder), dtype, spec, local_files_only=True)
        except (OSError, ValueError, RuntimeError):
            pass  # unreadable cache: rebuilt below, never used
    progress(0.1, "first load: reading and dequantizing the GGUF (cached afterwards)")
    gguf = locate()
    model, tok = _auto(str(gguf.parent), torch.float32, spec, gguf_file=gguf.name)
    model = model.to(dtype)
    progress(0.8, "saving the dequantized model to the cache")
    _save_dense(model, tok, folder, source_id)
    return model, tok


def _save_dense(model, tok, folder: Path, source_id: str) -> None:
    # The GGUF quantizer marks the model as quantized; the weights are already dense.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    zoo.write_marker(tmp, source_id)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


_LOADERS = {"bundled": _load_bundled, "gguf": _load_gguf, "folder": _load_folder, "hub": _load_hub}
