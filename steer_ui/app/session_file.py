"""A session file: every vector of a session, the settings the user chose and the
models it was made with, as one ``.zip`` (no gradio here: the Models tab calls it).

Why a zip of safetensors rather than one .safetensors: each vector inside is an
ordinary steer-ui vector file (``concepts.files.save_vector``), so one can be unzipped
and uploaded on its own or read with any safetensors reader, and the manifest is plain
JSON a person can read. Nothing in it is executable (JSON and safetensors, never pickle).

Layout, format_version 1::

    manifest.json            {"format": "steer-ui-session", "format_version": 1, "created",
                              "concept", "models": {"llm": name, "slm": name}, "settings": {...},
                              "vectors": [{"file", "sha256", "slot", "role", "kind",
                                           "contrast", "activations", "activations_sha256"}]}
    vectors/<n>.safetensors  tensor "directions" + steer_ui metadata (a vector file)
    activations/<role>.safetensors  tensors "pos" and "neg", (n, layers, hidden) float32

``slot`` is "native" (a role's extraction: its contrast set is kept as JSON) or "extra"
(a named SLM vector: transferred, uploaded, arithmetic). A native vector's activations
are left out when they would take the file past the upload cap; restoring it then
records its contrast prompts again (forward passes) so the PCA plot and transfers work.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from ..concepts.contrast import ContrastSet, Prompt
from ..concepts.files import load_vector, save_vector
from ..concepts.vectors import ConceptVector
from ..config import max_upload_bytes
from ..errors import VectorError
from .state import SessionState

FORMAT = "steer-ui-session"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MAX_MEMBERS = 1000  # far more vectors than a session holds; guards against zip bombs of tiny files


@dataclass
class SavedVector:
    """One vector read back from a session file, not yet in any session."""

    slot: str  # "native" or "extra"
    role: str  # "llm" or "slm"
    kind: str  # the name the UI lists it under ("native", "transferred:ridge:happy-sad" ...)
    vector: ConceptVector
    contrast: ContrastSet | None = None  # native only
    pos: torch.Tensor | None = None  # native only, when the activations were saved
    neg: torch.Tensor | None = None


@dataclass
class SessionFile:
    """What a session file holds, fully read and checked."""

    models: dict[str, str]
    settings: dict
    vectors: list[SavedVector] = field(default_factory=list)
    concept: str = ""
    created: str = ""


def save_session(state: SessionState, path: str | Path, models: dict[str, str],
                 settings: dict) -> tuple[Path, list[str]]:
    """Write every vector of ``state`` plus ``settings`` (JSON-able UI values) to ``path``.
    Returns the path and the roles whose activations were left out to fit the cap."""
    try:
        json.dumps(settings)
    except (TypeError, ValueError) as exc:
        raise VectorError(f"The session's settings cannot be saved as JSON ({exc}).") from None
    members: dict[str, bytes] = {}
    entries = [_native_entry(role, ex, members) for role, ex in state.extractions.items()]
    entries += [_vector_entry("extra", "slm", kind, v, members) for kind, v in state.extra.items()]
    # the manifest's own size, counted before it is written (its other fields are short)
    reserve = len(json.dumps({"vectors": entries, "settings": settings, "models": models}, indent=2)) + 1024
    left_out = _fit_under_cap(entries, members, reserve)
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "concept": concept_of(state),
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "models": models, "settings": settings, "vectors": entries}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(MANIFEST, json.dumps(manifest, indent=2))
        for name, data in members.items():
            z.writestr(name, data)
    return path, left_out


def concept_of(state: SessionState) -> str:
    """The session's concept name: its native vector's, else its first other vector's."""
    names = [ex.vector.name for ex in state.extractions.values()] + [v.name for v in state.extra.values()]
    return names[0] if names else "empty"


def _vector_entry(slot: str, role: str, kind: str, v: ConceptVector, members: dict[str, bytes]) -> dict:
    name = f"vectors/{sum(n.startswith('vectors/') for n in members)}.safetensors"  # 0, 1, 2 ...
    with tempfile.TemporaryDirectory() as tmp:  # save_vector writes files; reuse it as is
        data = save_vector(v, Path(tmp) / "v.safetensors").read_bytes()
    members[name] = data
    return {"file": name, "sha256": _sha(data), "slot": slot, "role": role, "kind": kind}


def _native_entry(role: str, ex, members: dict[str, bytes]) -> dict:
    entry = _vector_entry("native", role, "native", ex.vector, members)
    name = f"activations/{role}.safetensors"
    members[name] = save_tensors({"pos": ex.pos.float().contiguous(), "neg": ex.neg.float().contiguous()})
    contrast = asdict(ex.contrast)
    return {**entry, "contrast": contrast, "activations": name, "activations_sha256": _sha(members[name])}


def _fit_under_cap(entries: list[dict], members: dict[str, bytes], reserve: int) -> list[str]:
    """Leave out the largest activations until the file unpacks within the upload cap
    (so it can be restored here); their vectors stay, and restoring records the prompts
    again. Returns the roles left without activations."""
    def fits() -> bool:
        return sum(map(len, members.values())) + reserve <= max_upload_bytes()

    left_out = []
    for entry in sorted((e for e in entries if e.get("activations")), key=lambda e: -len(members[e["activations"]])):
        if fits():
            return left_out
        del members[entry["activations"]]
        entry["activations"] = entry["activations_sha256"] = None
        left_out.append(entry["role"])
    if not fits():
        raise VectorError(f"This session's vectors alone are over the {max_upload_bytes() >> 20} MiB upload "
                          "cap: remove some (Concept tab) or raise STEER_UI_MAX_UPLOAD_MB, then save again.")
    return left_out


def read_session(path: str | Path) -> SessionFile:
    """Read and check a whole session file; ``VectorError`` naming what is wrong. Nothing
    is applied to any session here, so a bad file leaves the session as it was."""
    path = Path(path)
    z = _open_zip(path)
    with z:
        manifest = _manifest(z, path.name)
        vectors = [_read_entry(z, path.name, e) for e in _entries(manifest, path.name)]
    return SessionFile(models=dict(manifest.get("models") or {}), settings=dict(manifest.get("settings") or {}),
                       vectors=vectors, concept=str(manifest.get("concept", "")),
                       created=str(manifest.get("created", "")))


def _open_zip(path: Path) -> zipfile.ZipFile:
    if not path.is_file():
        raise VectorError(f"Session file {str(path)!r} does not exist.")
    cap = max_upload_bytes()
    if path.stat().st_size > cap:
        raise VectorError(f"{path.name} is over the {cap >> 20} MiB upload cap: not a session file "
                          "steer-ui wrote (raise STEER_UI_MAX_UPLOAD_MB if it is).")
    if not zipfile.is_zipfile(path):
        raise VectorError(f"{path.name} is not a steer-ui session file (not a zip): upload the "
                          ".zip that 'Save session' downloaded.")
    z = zipfile.ZipFile(path)
    infos = z.infolist()
    # sizes as the zip declares them; zipfile stops reading a member past its declared size
    if len(infos) > MAX_MEMBERS or sum(i.file_size for i in infos) > cap:
        z.close()
        raise VectorError(f"{path.name} unpacks to over {cap >> 20} MiB or {MAX_MEMBERS} files: "
                          "not a session file steer-ui wrote.")
    return z


def _read(z: zipfile.ZipFile, name: str, file: str) -> bytes:
    try:
        return z.read(name)
    except KeyError:
        raise VectorError(f"{file} lacks {name}: the session file is incomplete. Save the session again.") from None
    except (zipfile.BadZipFile, OSError, ValueError) as exc:  # a corrupt member (bad CRC ...)
        raise VectorError(f"{file}: {name} is damaged ({exc}). Save the session again.") from None


def _manifest(z: zipfile.ZipFile, file: str) -> dict:
    try:
        manifest = json.loads(_read(z, MANIFEST, file))
    except (ValueError, UnicodeDecodeError):
        raise VectorError(f"{file}: {MANIFEST} is not valid JSON. Save the session again.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise VectorError(f"{file} is a zip but not a steer-ui session file ({MANIFEST} does not say "
                          f"format {FORMAT!r}).")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise VectorError(f"{file} is session format version {version!r}; this steer-ui reads version "
                          f"{FORMAT_VERSION}. Open it with the steer-ui that saved it.")
    return manifest


def _entries(manifest: dict, file: str) -> list[dict]:
    entries = manifest.get("vectors")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise VectorError(f"{file}: {MANIFEST} has no list of vectors. Save the session again.")
    if not isinstance(manifest.get("settings", {}), dict) or not isinstance(manifest.get("models", {}), dict):
        raise VectorError(f"{file}: {MANIFEST}'s settings and models must be JSON objects.")
    return entries


def _checked(z: zipfile.ZipFile, file: str, name, digest) -> bytes:
    data = _read(z, str(name), file)
    if _sha(data) != digest:
        raise VectorError(f"{file}: {name} does not match its checksum in {MANIFEST}: the file was changed "
                          "or damaged. Save the session again.")
    return data


def _read_entry(z: zipfile.ZipFile, file: str, e: dict) -> SavedVector:
    data = _checked(z, file, e.get("file"), e.get("sha256"))
    if e.get("slot") not in ("native", "extra") or e.get("role") not in ("llm", "slm") or not e.get("kind"):
        raise VectorError(f"{file}: {MANIFEST} lists {e.get('file')} without a valid slot, role and kind.")
    # load_vector reads paths: a temporary file, named from the member's name made safe
    # (the name shows in load_vector's messages; "..", "/" and the like never reach a path)
    stem = "".join(ch for ch in Path(str(e["file"])).stem if ch.isalnum() or ch in "-_") or "vector"
    with tempfile.TemporaryDirectory() as tmp:
        member = Path(tmp) / f"{stem}.safetensors"
        member.write_bytes(data)
        try:
            v = load_vector(member)
        except VectorError as exc:
            raise VectorError(f"{file}: {exc}") from None
    saved = SavedVector(e["slot"], e["role"], str(e["kind"]), v)
    if saved.slot == "native":
        saved.contrast = _contrast(e.get("contrast"), file)
        if e.get("activations"):
            saved.pos, saved.neg = _activations(_checked(z, file, e["activations"], e.get("activations_sha256")),
                                                v, len(saved.contrast), file)
    return saved


def _contrast(d, file: str) -> ContrastSet:
    try:
        return ContrastSet(name=str(d["name"]), positive=tuple(Prompt(**p) for p in d["positive"]),
                           negative=tuple(Prompt(**p) for p in d["negative"]), source=str(d.get("source", "lists")),
                           letters=tuple(d.get("letters") or ()))
    except (TypeError, KeyError, ValueError) as exc:
        raise VectorError(f"{file}: a native vector's contrast prompts are unreadable ({exc}).") from None


def _activations(data: bytes, v: ConceptVector, n: int, file: str) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        t = load_tensors(data)
    except (SafetensorError, ValueError) as exc:
        raise VectorError(f"{file}: activations unreadable ({exc}).") from None
    shape = (n, v.n_layers, v.hidden_size)
    pos, neg = t.get("pos"), t.get("neg")
    if pos is None or neg is None or tuple(pos.shape) != shape or tuple(neg.shape) != shape \
            or not (torch.isfinite(pos).all() and torch.isfinite(neg).all()):
        raise VectorError(f"{file}: activations must be finite 'pos' and 'neg' tensors of shape {shape}.")
    return pos.float(), neg.float()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

