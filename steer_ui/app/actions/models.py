"""The Models tab: a plain, unsteered conversation with one model, which engine
generates for it, and saving or restoring the whole session as one file."""

from __future__ import annotations

import datetime as _dt
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from ...concepts.extraction import Extraction, extract_concept
from ...concepts.vectors import METHODS, ConceptVector, letter_cosines
from ...errors import SteerError
from ...steering.generation import Sampling, stream
from .. import session_file
from ..pool import Pair
from ..state import SessionState


def chat_reply(wb: Pair, role: str, history: list[dict], sampling: Sampling,
               stop: threading.Event) -> Iterator[str]:
    """Plain (unsteered) streaming chat with one model."""
    lm = wb.get(role)
    messages = [{"role": m["role"], "content": _content(m["content"])} for m in history]
    text = lm.chat_messages(messages)
    for rows in stream(lm, text, None, [0.0], None, sampling, stop=stop, chat=False):
        yield rows[0]


def _content(c) -> str:
    # Gradio 6 may hand message content as a list of {"type": "text", "text": ...} parts.
    if isinstance(c, list):
        return " ".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in c)
    return str(c)


def set_engine(wb: Pair, role: str, choice: str) -> str:
    """Switch what generates for ``role``'s model (shared by every session using it); the
    status line's text."""
    from ...steering.engines import switch

    if role not in wb.models:
        raise SteerError(f"No {role.upper()} loaded in this session.")
    lm = wb.models[role]
    return f"{role.upper()} **{lm.name}** now generates with {switch(lm, choice or 'torch')}"


def save_session(wb: Pair, state: SessionState, settings: dict, folder: str | Path | None = None) -> tuple[str, str]:
    """Write the session as ``steer-ui-session-<concept>-<date>.zip`` (in a fresh temporary
    folder unless ``folder``); returns its path and the status line."""
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    stem = _safe_name(f"steer-ui-session-{session_file.concept_of(state)}-{date}")
    folder = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="steer-ui-session-"))
    models = {r: lm.name for r, lm in wb.models.items()}
    path, left_out = session_file.save_session(state, folder / f"{stem}.zip", models, settings)
    held = ", ".join(state.files()) or "no vectors yet"
    note = "".join(f"; the {r.upper()} activations were left out to fit the upload cap (restoring records "
                   "its prompts again)" for r in left_out)
    return str(path), f"saved **{path.name}**: {held}, and the Steer tab's settings{note}"


def restore_session(wb: Pair, state: SessionState, path: str | None, progress=None) -> tuple[str, dict]:
    """Restore a session file into ``state``: each vector that fits the loaded models
    joins the session (replacing one of the same name), the others are skipped and named.
    Returns the status line and the saved settings. A bad file changes nothing."""
    if not path:
        raise SteerError("Choose a session file (.zip, from 'Save session') to restore.")
    saved = session_file.read_session(path)
    extractions, extra, restored, skipped, notes = {}, {}, [], [], []
    for sv in saved.vectors:
        label = f"{sv.role.upper()} {sv.kind}"
        lm = wb.models.get(sv.role)
        why = _misfit(lm, sv.role, sv.vector)
        if why:
            skipped.append(f"{label} ({why})")
            continue
        if lm.name != sv.vector.model:
            notes.append(f"{label} was made with {sv.vector.model}, restored onto {lm.name} (same shape)")
        if sv.slot == "native":
            extractions[sv.role] = _extraction(lm, sv, progress)
            if sv.pos is None:
                notes.append(f"{label}: its activations were not in the file, so its prompts were recorded again")
        else:
            extra[sv.kind] = sv.vector
        restored.append(label)
    # applied only now: a failure above (a bad file, out of memory) leaves the session as it was
    state.extractions.update(extractions)
    state.extra.update(extra)
    return _restore_message(Path(path).name, saved, restored, skipped, notes), saved.settings


def _misfit(lm, role: str, v: ConceptVector) -> str:
    """Why ``v`` cannot steer ``lm`` ("" when it can)."""
    if lm is None:
        return f"no {role.upper()} is loaded: load {v.model} and restore again"
    if (v.n_layers, v.hidden_size) != (lm.n_layers, lm.hidden_size):
        return (f"{v.n_layers} layers x {v.hidden_size} for {v.model}, but the loaded {role.upper()} "
                f"{lm.name} has {lm.n_layers} x {lm.hidden_size}: load {v.model} and restore again")
    return ""


def _extraction(lm, sv: session_file.SavedVector, progress=None) -> Extraction:
    """The native vector as an extraction again: the saved activations, or (when the
    file left them out) the contrast prompts recorded again in ``lm``; the vector is
    always the saved one."""
    if sv.pos is not None:
        return Extraction(sv.vector, sv.pos, sv.neg, sv.contrast, letter_cosines(sv.pos, sv.neg, sv.contrast.letters),
                          0.0, 0)
    method = sv.vector.method if sv.vector.method in METHODS else "mean-diff"
    ex = extract_concept(lm, sv.contrast, method, sv.vector.provenance.get("position", "last"), progress=progress)
    return replace(ex, vector=sv.vector)


def _restore_message(file: str, saved: session_file.SessionFile, restored, skipped, notes) -> str:
    lines = [f"restored from **{file}** (concept {saved.concept}, saved {saved.created or 'at an unknown time'} "
             f"with {', '.join(f'{r.upper()} {m}' for r, m in saved.models.items()) or 'no models'}): "
             f"{', '.join(restored) or 'no vectors'}; the Steer tab's settings are back (move a Concept tab "
             "layer slider to redraw its plots)"]
    lines += [f"⚠ skipped {s}" for s in skipped] + notes
    return "\n\n".join(lines)


def _safe_name(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)
