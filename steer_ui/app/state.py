"""``SessionState``: one user's concepts and vectors, kept in ``gr.State`` by the UI.

The models are shared through the ``ModelPool``; what a user extracted, transferred or
uploaded lives here, one state per browser session.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field

from ..concepts.extraction import Extraction
from ..concepts.vectors import ConceptVector, random_like
from ..errors import SteerError
from .pool import ROLES


@dataclass
class SessionState:
    """One user's concepts, keyed by role ("llm"/"slm"), plus extra SLM vectors.

    Vectors the user made (transfers) or uploaded stay until the user removes them,
    whatever is extracted later; every list the UI shows is built from here.
    """

    # Which session this is: the model pool counts who uses each model by it.
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    extractions: dict[str, Extraction] = field(default_factory=dict)
    # Named SLM vectors beside the native one: "transferred:ridge:happy-sad", "uploaded:mine" ...
    extra: dict[str, ConceptVector] = field(default_factory=dict)
    # Stop events of this user's running generations (the Stop button sets them).
    stops: list[threading.Event] = field(default_factory=list)

    def new_stop(self, action: str = "") -> threading.Event:
        """A stop event for a new generation. Naming the ``action`` ("steer", "sweep" ...)
        supersedes this session's earlier run of it: that one ends at its next token, so
        an abandoned run never keeps the model busy while the new one waits."""
        for s in self.stops if action else ():
            if getattr(s, "action", None) == action:
                s.set()
        self.stops[:] = [s for s in self.stops if not s.is_set()]
        event = threading.Event()
        event.action = action
        self.stops.append(event)
        return event

    def stop_all(self) -> None:
        for s in self.stops:
            s.set()

    def vector(self, role: str, kind: str = "native") -> ConceptVector:
        """The vector the UI lists as ``kind`` for ``role``; ``SteerError`` saying what exists."""
        if kind in ("native", "random control"):
            if role not in self.extractions:
                raise SteerError("Extract a concept first (Concept tab), then steer with it.")
            native = self.extractions[role].vector
            return native if kind == "native" else random_like(native, seed=0)
        if role == "slm" and kind in self.extra:
            return self.extra[kind]
        held = ", ".join(self.vector_kinds()) or "none yet"
        raise SteerError(f"This session holds no SLM vector {kind!r} (it holds: {held}). Transfer or "
                         "upload it again, or pick one of those.")

    def vector_kinds(self) -> list[str]:
        """The SLM vectors this session holds, by the names the UI lists them under."""
        return (["native", "random control"] if "slm" in self.extractions else []) + list(self.extra)

    def add(self, kind: str, vector: ConceptVector) -> str:
        """Keep ``vector`` under ``kind`` (a second upload of one name gets "#2"); returns the name."""
        name, n = kind, 2
        while name in self.extra and not kind.startswith("transferred:"):  # a re-transfer replaces
            name, n = f"{kind}#{n}", n + 1
        self.extra[name] = vector
        return name

    def remove(self, kind: str) -> None:
        if kind not in self.extra:
            raise SteerError(f"{kind!r} is not a vector you transferred or uploaded: nothing to remove.")
        del self.extra[kind]

    def files(self) -> list[str]:
        """What the Concept tab can download: "<ROLE> <kind>" for every vector held."""
        return [f"{r.upper()} native" for r in ROLES if r in self.extractions] + \
            [f"SLM {k}" for k in self.extra]
