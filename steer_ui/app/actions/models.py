"""The Models tab's chat: a plain, unsteered conversation with one model."""

from __future__ import annotations

import threading
from collections.abc import Iterator

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
