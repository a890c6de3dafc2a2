"""The models every session shares: a pool of loaded models keyed by name, each guarded
by its own lock and batched by its own scheduler, and the LLM/SLM pair each session
(a browser tab, an API caller) has picked from it.

One user's Load never changes another's pair: it loads (or re-uses) a model in the
pool and points only that user's pair at it. A memory budget bounds the pool: when a
load goes over it, models no session uses are evicted, least recently used first; a
model that still does not fit is unloaded again with a message that says so.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from ..errors import ModelError
from ..models.loading import LoadedModel, ModelSpec, load_model

ROLES = ("llm", "slm")


@dataclass
class Pair:
    """One session's view of the pool: its model per role (what the tab actions use)."""

    models: dict[str, LoadedModel] = field(default_factory=dict)

    def get(self, role: str) -> LoadedModel:
        try:
            return self.models[role]
        except KeyError:
            raise ModelError(f"No {role.upper()} is loaded yet: load one in the Models tab "
                             "(or pass --llm/--slm).") from None


class ModelPool:
    """Loaded models by name, the pair new sessions start with, and who uses what."""

    def __init__(self, device: str | None = None, dtype: str | None = None, device_map: str | None = None,
                 trust_remote_code: bool = False, layers_path: str | None = None,
                 budget_bytes: int | None = None, engine: str = "torch"):
        # What the app was started with; every later load (the Models tab's too) keeps it.
        self.defaults = {"device": device, "dtype": dtype, "device_map": device_map,
                         "trust_remote_code": trust_remote_code, "layers_path": layers_path, "engine": engine}
        self.budget = budget_bytes
        self.loaded: dict[str, LoadedModel] = {}  # by name
        self.start_pair: dict[str, str] = {}  # role -> name: what a new session gets
        self.users: dict[str, dict[str, str]] = {}  # session id -> its pair (role -> name)
        self.last_used: dict[str, float] = {}  # name -> when a session last used it
        self._loading = threading.Lock()

    # ---------- the pair as the app starts it (the CLI's --llm/--slm) ----------

    @property
    def models(self) -> dict[str, LoadedModel]:
        """The start pair, by role (what a fresh session sees)."""
        return {r: self.loaded[n] for r, n in self.start_pair.items() if n in self.loaded}

    def get(self, role: str) -> LoadedModel:
        return Pair(self.models).get(role)

    def load(self, role: str, source: str, progress=None, **spec_kw) -> LoadedModel:
        """Load ``source`` as the start pair's ``role`` (every session that has not picked
        its own model uses it); on failure the previous model stays in place."""
        lm = self.add(source, progress, **spec_kw)
        self.start_pair[role] = lm.name
        return lm

    def put(self, role: str, lm: LoadedModel) -> None:
        """Put an already loaded model in the pool as the start pair's ``role`` (tests, benchmarks)."""
        self.loaded[lm.name] = lm
        self.start_pair[role] = lm.name

    # ---------- per session ----------

    def pair(self, session: str) -> Pair:
        """``session``'s pair: the models it picked, the start pair for the rest."""
        mine = self.users.setdefault(session, {})
        names = {**self.start_pair, **mine}
        now = time.monotonic()
        for n in names.values():
            self.last_used[n] = now
        return Pair({r: self.loaded[n] for r, n in names.items() if n in self.loaded})

    def load_for(self, session: str, role: str, source: str, progress=None) -> LoadedModel:
        """Load (or re-use) ``source`` and make it ``session``'s ``role``: nobody else's changes."""
        if role not in ROLES:
            raise ModelError(f"Unknown role {role!r}: use llm or slm.")
        lm = self.add(source, progress)
        self.users.setdefault(session, {})[role] = lm.name
        self.last_used[lm.name] = time.monotonic()
        return lm

    def forget(self, session: str) -> None:
        """A session ended (its browser tab closed): its picks no longer hold models."""
        self.users.pop(session, None)

    def users_of(self, name: str) -> int:
        """How many sessions use model ``name`` (the start pair counts for those without a pick)."""
        return sum(1 for mine in self.users.values() if name in {**self.start_pair, **mine}.values())

    # ---------- loading and the memory budget ----------

    def add(self, source: str, progress=None, **spec_kw) -> LoadedModel:
        """The pool's model for ``source``: loaded once, then shared."""
        spec = ModelSpec(source.strip(), **{**self.defaults, **spec_kw})
        for lm in self.loaded.values():
            if lm.spec == spec:
                return lm
        with self._loading:  # one load at a time keeps peak memory bounded
            lm = load_model(spec, progress)
        self.loaded[lm.name] = lm
        self._fit(lm)
        return lm

    def in_use(self) -> set[str]:
        return set(self.start_pair.values()) | {n for mine in self.users.values() for n in mine.values()}

    def _fit(self, new: LoadedModel) -> None:
        """Evict unused models, least recently used first, until the budget holds."""
        if self.budget is None:
            return
        busy = self.in_use() | {new.name}
        for name in sorted(set(self.loaded) - busy, key=lambda n: self.last_used.get(n, 0)):
            if self.total_bytes() <= self.budget:
                break
            del self.loaded[name]
        if self.total_bytes() > self.budget:
            del self.loaded[new.name]
            used = ", ".join(f"{n} ({lm.memory_bytes() >> 20} MiB)" for n, lm in self.loaded.items()) or "none"
            raise ModelError(f"{new.name} needs {new.memory_bytes() >> 20} MiB, more than the memory budget "
                             f"({self.budget >> 20} MiB) leaves beside the models in use ({used}). Pick a "
                             "smaller model, or start the app with a larger --memory-budget.")

    def total_bytes(self) -> int:
        return sum(lm.memory_bytes() for lm in self.loaded.values())

    def table(self) -> list[list]:
        """What is loaded and who uses it, for the Models tab and ``/v1/models``."""
        return [[n, lm.family, f"{lm.memory_bytes() >> 20} MiB", str(lm.dtype).removeprefix("torch."),
                 self.users_of(n), ", ".join(r.upper() for r, m in self.start_pair.items() if m == n) or "-"]
                for n, lm in self.loaded.items()]
