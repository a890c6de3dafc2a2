"""The models every session shares: the loaded LLM/SLM pair, guarded by each model's
lock. Per-user things (vectors, maps) live in each session's ``SessionState``, never here.
"""

from __future__ import annotations

import threading

from ..errors import ModelError
from ..models.loading import LoadedModel, ModelSpec, load_model

ROLES = ("llm", "slm")


class ModelPool:
    """The shared LLM/SLM pair (one model per role). Loading a new one replaces the old only on success."""

    def __init__(self, device: str | None = None, dtype: str | None = None, device_map: str | None = None,
                 trust_remote_code: bool = False, layers_path: str | None = None):
        # What the app was started with; every later load (the Models tab's too) keeps it.
        self.defaults = {"device": device, "dtype": dtype, "device_map": device_map,
                         "trust_remote_code": trust_remote_code, "layers_path": layers_path}
        self.models: dict[str, LoadedModel] = {}
        self._loading = threading.Lock()

    def load(self, role: str, source: str, progress=None, **spec_kw) -> LoadedModel:
        """Load ``source`` into ``role``; on failure the previous model stays in place."""
        if role not in ROLES:
            raise ModelError(f"Unknown role {role!r}: use llm or slm.")
        spec = ModelSpec(source.strip(), **{**self.defaults, **spec_kw})
        current = self.models.get(role)
        if current is not None and current.spec == spec:
            return current
        with self._loading:  # one load at a time keeps peak memory bounded
            lm = load_model(spec, progress)
        self.models[role] = lm
        return lm

    def get(self, role: str) -> LoadedModel:
        try:
            return self.models[role]
        except KeyError:
            raise ModelError(f"No {role.upper()} is loaded yet: load one in the Models tab "
                             "(or pass --llm/--slm).") from None
