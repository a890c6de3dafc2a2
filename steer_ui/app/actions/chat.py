"""The Steer tab's multi-turn chat: the SLM unsteered beside the SLM steered, each side
keeping its own history (the steered side answers after its own steered replies)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ...errors import SteerError
from ...steering.generation import Sampling, layers_label, push_label, stream
from ...steering.hooks import Push
from ..pool import Pair
from ..state import SessionState
from .steer import Layers, merge


@dataclass(frozen=True)
class ChatSteer:
    """How the steered side is steered: the Steer tab's settings for the SLM."""

    kind: str = "native"
    intensity: float = 0.4
    layers: Layers = None
    mode: str = "relative"
    positions: str = "all"
    extra: tuple[Push, ...] = ()


def clean(history: Sequence[dict] | None) -> list[dict]:
    """Chatbot messages as plain {"role", "content"} dicts with text content (Gradio 6
    hands content back as a list of {"type": "text", "text": ...} parts)."""
    out = []
    for m in history or []:
        c = m["content"]
        text = " ".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in c) if isinstance(c, list) \
            else str(c)
        out.append({"role": m["role"], "content": text})
    return out


def conversation(lm, messages: list[dict], system: str = "") -> str:
    """The whole conversation in ``lm``'s chat template, ready for the assistant's turn."""
    head = [{"role": "system", "content": system.strip()}] if (system or "").strip() else []
    return lm.chat_messages(head + messages)


def chat_turn(wb: Pair, state: SessionState, message: str, plain: Sequence[dict] | None,
              steered: Sequence[dict] | None, how: ChatSteer, system: str, sampling: Sampling,
              stop: threading.Event) -> Iterator[tuple[list[dict], list[dict], str]]:
    """Send ``message`` to both sides; yields (unsteered history, steered history, status)
    as the two replies stream in."""
    text = (message or "").strip()
    if not text:
        raise SteerError("Type a message to send: the chat box is empty.")
    lm = wb.get("slm")
    v = state.vector("slm", how.kind)
    user = {"role": "user", "content": text}
    sides = {"plain": clean(plain) + [user], "steered": clean(steered) + [user]}
    jobs = {"plain": stream(lm, conversation(lm, sides["plain"], system), None, [0.0], None, sampling,
                            stop=stop, chat=False),
            "steered": stream(lm, conversation(lm, sides["steered"], system), [v], [how.intensity], how.layers,
                              sampling, mode=how.mode, positions=how.positions, stop=stop, chat=False,
                              extra=how.extra)}
    layer = how.layers if how.layers is not None else v.default_layer
    status = (f"chat: SLM steered by **{v.name}** ({how.kind}) {how.intensity:+.2f} {how.mode} at "
              f"{layers_label(layer)}" + "".join(f" + **{push_label(p)}**" for p in how.extra))
    replies = {"plain": "", "steered": ""}

    def histories():
        return tuple(sides[k] + [{"role": "assistant", "content": replies[k]}] for k in ("plain", "steered"))

    for side, rows in merge(jobs):
        replies[side] = rows[0]
        yield (*histories(), status + " · generating…")
    yield (*histories(), status + (" · stopped" if stop.is_set() else f" · turn {len(sides['plain']) // 2 + 1}"))
