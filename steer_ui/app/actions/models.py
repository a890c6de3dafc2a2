"""The Models tab: a plain, unsteered conversation with one model, and which engine
generates for it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from ...errors import SteerError
from ...steering.generation import Sampling, stream
from ..pool import Pair


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
