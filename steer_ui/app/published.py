"""Vectors published to the server: what API callers steer with, by name.

A vector gets here from the UI (the Concept tab's Publish, for a vector a session
extracted, transferred or uploaded) or from ``POST /v1/vectors``; every published
vector belongs to the model it was made for, and requests for another model are told so.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from ..concepts.vectors import ConceptVector
from ..errors import VectorError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}$")


@dataclass(frozen=True)
class Published:
    name: str
    vector: ConceptVector
    source: str  # "ui", "upload"

    def describe(self) -> dict:
        v = self.vector
        layers = [i for i in range(v.n_layers) if bool(v.directions[i].abs().sum() > 0)]
        return {"name": self.name, "object": "steering_vector", "model": v.model, "n_layers": v.n_layers,
                "hidden_size": v.hidden_size, "layers": layers, "default_layer": v.default_layer,
                "method": v.method, "concept": v.name, "published_from": self.source,
                "provenance": v.provenance}


class VectorStore:
    """Published vectors by name; thread-safe (UI sessions and API calls share it)."""

    def __init__(self):
        self._items: dict[str, Published] = {}
        self._lock = threading.Lock()

    def publish(self, name: str, vector: ConceptVector, source: str = "ui") -> Published:
        name = (name or "").strip()
        if not NAME.match(name):
            raise VectorError(f"{name!r} cannot name a vector: use 1-100 letters, digits and . _ : @ - "
                              "(starting with a letter or digit).")
        with self._lock:
            item = self._items[name] = Published(name, vector, source)
        return item

    def get(self, name: str) -> Published:
        with self._lock:
            item = self._items.get(name)
        if item is None:
            known = ", ".join(self.names()) or "none yet"
            raise VectorError(f"No published vector {name!r} (published: {known}). Publish it from the UI's "
                              "Concept tab or POST it to /v1/vectors.")
        return item

    def remove(self, name: str) -> None:
        with self._lock:
            if self._items.pop(name, None) is None:
                raise VectorError(f"No published vector {name!r} to delete.")

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._items)

    def all(self) -> list[Published]:
        with self._lock:
            return [self._items[n] for n in sorted(self._items)]
