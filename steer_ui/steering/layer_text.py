"""Layers as people type them: "15", a range "10-14", a list "8,12", or both "8,10-12"."""

from __future__ import annotations

import re

from ..errors import LayerError

_RANGE = re.compile(r"(\d+)\s*-\s*(\d+)")


def parse_layers(text: str | None, what: str = "--layer") -> list[int] | None:
    """Layer indices from ``text``; None when it is empty (the caller's default layer).

    ``what`` names the field in the message, e.g. "--layer" or "Steer at layer(s)".
    Ranges count both ends. Whether the layers exist is ``check_layers``' business: it
    knows the model."""
    text = (text or "").strip()
    if not text:
        return None
    layers: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        m = _RANGE.fullmatch(part)
        try:
            layers += list(range(int(m[1]), int(m[2]) + 1)) if m else [int(part)]
        except ValueError:
            raise LayerError(f"{what} {text!r} is not a layer, a range like 10-14, or a list like 8,12.") from None
        if m and int(m[1]) > int(m[2]):
            raise LayerError(f"{what} {text!r}: the range {part} runs backwards; write it low-high, "
                             f"e.g. {m[2]}-{m[1]}.")
    return layers
