"""Settings: one frozen dataclass, defaults with a reason each, env overrides."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

# Gradio phones home for analytics unless told not to; we never want that.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def _cache_dir() -> Path:
    return Path(os.environ.get("STEER_UI_CACHE", Path.home() / ".cache" / "steer-ui"))


@dataclass(frozen=True)
class Settings:
    """What the app and CLI start with; every field can be changed by a flag."""

    # The cross-family pair of the research claim: Qwen2.5 1.5B -> SmolLM2 135M.
    llm: str = "qwen2.5-1.5b"
    slm: str = "smollm2-135m"
    # Loopback only: exposing a model server is a choice the user makes explicitly.
    host: str = "127.0.0.1"
    port: int = 7860
    device: str | None = None  # None: CUDA, then MPS, then CPU
    dtype: str | None = None  # None: bf16 where the hardware has it, else fp32
    cache_dir: Path = field(default_factory=_cache_dir)
    # Any file a user hands us (vector, contrast set, dataset) larger than this is refused
    # before it is parsed: a vector of an 80-layer, 8192-wide model is 2.6 MB.
    max_upload_mb: int = 64
    # llama.cpp generates where it can (GGUF on CPU): several times faster for small models.
    engine: str = "auto"


def settings() -> Settings:
    """The defaults, with ``STEER_UI_*`` environment overrides applied."""
    env = os.environ
    return Settings(
        llm=env.get("STEER_UI_LLM", Settings.llm),
        slm=env.get("STEER_UI_SLM", Settings.slm),
        device=env.get("STEER_UI_DEVICE") or None,
        dtype=env.get("STEER_UI_DTYPE") or None,
        engine=env.get("STEER_UI_ENGINE") or Settings.engine,
        max_upload_mb=int(env.get("STEER_UI_MAX_UPLOAD_MB") or Settings.max_upload_mb),
    )


def max_upload_bytes() -> int:
    """The one size cap on user files (the UI's upload limit too)."""
    return settings().max_upload_mb * 2**20


def neutral_corpus() -> list[str]:
    """The shipped neutral texts, one per line: maps are fitted on the first ones, fluency
    is measured on the last ones (``evaluation.fluency.heldout_texts``)."""
    return [t for t in (ASSETS / "neutral_corpus.txt").read_text(encoding="utf-8").splitlines() if t.strip()]
