"""``steer()``: add a concept direction to the residual stream while a block runs.

Intensity modes:
- ``relative`` (default): 1.0 adds a vector whose norm equals the layer's typical
  residual norm (``LoadedModel.typical_norms``), so one slider means the same in
  models whose residual norms differ 100x.
- ``raw``: adds ``intensity * direction`` as stored (steering-vectors' multiplier).
- ``adaptive``: per token, ``intensity * ||h_t||`` along the unit direction: the push
  follows the current residual norm at the hooked layer instead of a layer average.

Positions: ``all`` steers the prompt and every generated token; ``generated`` steers
from the last prompt token on (that token predicts the first generated one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

import torch

from ..concepts.recording import typical_norms
from ..concepts.vectors import ConceptVector
from ..errors import IntensityError, LayerError, SteerError, VectorError

MODES = ("relative", "raw", "adaptive")
POSITIONS = ("all", "generated")
MAX_INTENSITY = 1000.0


def check_intensities(values) -> list[float]:
    """Finite numbers of sane size, else ``IntensityError``."""
    out = []
    for v in values:
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise IntensityError(f"Intensity {v!r} is not a number.") from None
        if not math.isfinite(x):
            raise IntensityError(f"Intensity {v!r} is not finite; use a number such as 0.5 or -1.")
        if abs(x) > MAX_INTENSITY:
            raise IntensityError(f"Intensity {x:g} is beyond +-{MAX_INTENSITY:g}; "
                                 "relative intensities of +-0.1 to +-2 are the useful range.")
        out.append(x)
    return out


def check_layers(layers, n_layers: int) -> list[int]:
    """Layer indices (an int, a list or a (start, stop) range) checked against the model."""
    items = [layers] if isinstance(layers, int) else list(layers)
    if not items:
        raise LayerError("No layer chosen: pick at least one layer.")
    for i in items:
        if not isinstance(i, int) or not 0 <= i < n_layers:
            raise LayerError(f"Layer {i!r} is out of range: this model has layers 0..{n_layers - 1}.")
    return sorted(set(items))


def make_hook(delta: torch.Tensor, mode: str, start: int):
    """A forward hook adding ``delta`` (rows, d) to positions >= ``start`` of a layer output.

    ``start`` counts absolute positions across KV-cached calls; the hook keeps the
    offset of the next call in a closure, so one hook must serve one generation.
    """
    state = {"offset": 0}
    placed: dict = {}  # delta on each (device, dtype) it met: with a device map, layers differ

    def hook(module, args, output):
        hidden = output[0] if isinstance(output, tuple) else output  # (batch, seq, d)
        seq = hidden.shape[1]
        first = max(0, start - state["offset"])
        state["offset"] += seq
        if first >= seq:
            return None
        key = (hidden.device, hidden.dtype)
        if key not in placed:
            placed[key] = delta.to(device=hidden.device, dtype=hidden.dtype)[:, None, :]  # (rows, 1, d)
        add = placed[key]
        if mode == "adaptive":
            add = add * hidden[:, first:].float().norm(dim=-1, keepdim=True).to(hidden.dtype)
        if first == 0:
            steered = hidden + add
        else:
            steered = torch.cat([hidden[:, :first], hidden[:, first:] + add], dim=1)
        return (steered, *output[1:]) if isinstance(output, tuple) else steered

    return hook


def make_fanout_hook(delta: torch.Tensor, mode: str):
    """Like ``make_hook`` (all positions), but first widens a one-row batch to one row
    per ``delta`` row: everything below this layer ran once for all of them."""
    inner = make_hook(delta, mode, 0)

    def hook(module, args, output):
        hidden = output[0] if isinstance(output, tuple) else output  # (1, seq, d)
        if hidden.shape[0] != 1:
            raise SteerError(f"fan_out steering needs a one-row batch, got {hidden.shape[0]} rows.")
        wide = hidden.expand(delta.shape[0], -1, -1)  # (rows, seq, d)
        return inner(module, args, (wide, *output[1:]) if isinstance(output, tuple) else wide)

    return hook


def _base(lm, vector: ConceptVector | None, layer: int, mode: str) -> torch.Tensor:
    if vector is None:
        return torch.zeros(lm.hidden_size)
    if mode == "raw":
        return vector.directions[layer].float()
    if mode == "adaptive":
        return vector.unit(layer)
    return vector.unit(layer) * float(typical_norms(lm)[layer])


def as_raw(lm, vector: ConceptVector, intensity: float) -> ConceptVector:
    """The vector whose ``raw`` steering at 1.0 adds what ``relative`` steering of ``vector``
    at ``intensity`` adds, layer by layer: what an export for a tool that scales raw
    directions (llama.cpp, EasySteer) needs to mean our relative intensity."""
    x = check_intensities([intensity])[0]
    check_fits(vector, lm)
    units = vector.directions.float() / vector.directions.float().norm(dim=1, keepdim=True).clamp_min(1e-12)
    return replace(vector, directions=units * typical_norms(lm)[:, None] * x,  # (n_layers, d_model)
                   provenance={**vector.provenance, "relative_intensity": x})


def deltas(lm, vectors: list[ConceptVector | None], intensities: Sequence[float], layer: int,
           mode: str) -> torch.Tensor:
    """What ``steer`` adds at ``layer`` for each batch row: (rows, d_model)."""
    k = torch.tensor(intensities, dtype=torch.float32)[:, None]  # (rows, 1)
    bases = {id(v): _base(lm, v, layer, mode) for v in vectors}
    return (k * torch.stack([bases[id(v)] for v in vectors])).to(lm.device)


def row_vectors(vector, rows: int) -> list[ConceptVector | None]:
    """One vector (or None) per batch row, from a single vector or a list."""
    if vector is None or isinstance(vector, ConceptVector):
        return [vector] * rows
    vectors = list(vector)
    if len(vectors) != rows:
        raise VectorError(f"{len(vectors)} vectors for {rows} intensities: give one per row.")
    return vectors


@contextmanager
def steer(lm, vector, intensity: float | Sequence[float], layers=None,
          mode: str = "relative", positions: str = "all", prompt_length: int = 0, fan_out: bool = False):
    """Steer ``lm`` inside the block; hooks are removed in ``finally``.

    ``vector``: a ``ConceptVector``, None, or one of either per batch row (rows with
    None stay unsteered). ``intensity`` is one number or one per batch row. ``layers``:
    an int, a list, or None for the (first) vector's default layer. ``prompt_length`` (padded) is needed for
    ``positions="generated"``. ``fan_out``: the batch is one row that the first steered
    layer widens to one row per intensity (the layers below it run once; a KV cache
    built this way has one row below that layer and one per intensity above it).
    Holds ``lm.lock`` so concurrent users never share hooks.
    """
    if mode not in MODES:
        raise IntensityError(f"Unknown intensity mode {mode!r}: use {', '.join(MODES)}.")
    if positions not in POSITIONS:
        raise IntensityError(f"Unknown positions {positions!r}: use {', '.join(POSITIONS)}.")
    # One value (a number, numpy/0-d tensor scalar, or junk like None/'abc') or one per row.
    single = intensity is None or isinstance(intensity, (int, float, str, bytes)) \
        or getattr(intensity, "ndim", 1) == 0
    values = check_intensities([intensity] if single else intensity)
    if len(values) == 1 and not isinstance(vector, (ConceptVector, type(None))):
        values = values * len(list(vector))
    vectors = row_vectors(vector, len(values))
    present = [v for v in vectors if v is not None]
    for v in present:  # checked even at intensity 0: a bad layer or vector is reported either way
        check_fits(v, lm)
    chosen = check_layers(present[0].default_layer if layers is None else layers, lm.n_layers) if present else []
    with lm.lock:
        if not any(v is not None and x for v, x in zip(vectors, values)):
            yield  # nothing to add: the model runs untouched, bit for bit
            return
        start = max(prompt_length - 1, 0) if positions == "generated" else 0
        handles = []
        try:
            for i in chosen:
                delta = deltas(lm, vectors, values, i, mode)
                hook = make_fanout_hook(delta, mode) if fan_out and i == chosen[0] \
                    else make_hook(delta, mode, start)
                handles.append(lm.layers[i].register_forward_hook(hook))
            yield
        finally:
            for h in handles:
                h.remove()


def check_fits(vector: ConceptVector, lm) -> None:
    """``VectorError`` unless ``vector`` has ``lm``'s hidden size and layer count."""
    if vector.hidden_size != lm.hidden_size or vector.n_layers != lm.n_layers:
        raise VectorError(
            f"Vector {vector.name!r} was made for {vector.model} ({vector.n_layers} layers x "
            f"{vector.hidden_size}); {lm.name} has {lm.n_layers} layers x {lm.hidden_size}. "
            "Extract it in this model, or transfer it (Transfer tab / `steer_ui transfer`)."
        )


def hooks_left(lm) -> int:
    """Forward hooks still attached to ``lm``'s decoder layers (0 when idle)."""
    return sum(len(layer._forward_hooks) for layer in lm.layers)


# ---------- per-row steering for the scheduler: each row its own vectors, layers, modes ----------

@dataclass(frozen=True)
class Push:
    """One steering entry of a row: ``vector`` at ``intensity`` on ``layers`` (None: the
    vector's default layer) in ``mode``. A row's pushes add up (composition)."""

    vector: ConceptVector
    intensity: float
    layers: tuple[int, ...] | None = None
    mode: str = "relative"

    def layer_list(self, n_layers: int) -> list[int]:
        return check_layers(self.vector.default_layer if self.layers is None else list(self.layers), n_layers)


def check_pushes(lm, rows: Sequence[Sequence[Push]]) -> None:
    """``SteerError`` for any push that does not fit ``lm`` or has a bad intensity, layer or mode."""
    if not rows:
        raise IntensityError("No rows to generate: give at least one.")
    for pushes in rows:
        for p in pushes:
            if p.mode not in MODES:
                raise IntensityError(f"Unknown intensity mode {p.mode!r}: use {', '.join(MODES)}.")
            check_intensities([p.intensity])
            check_fits(p.vector, lm)
            p.layer_list(lm.n_layers)


@contextmanager
def row_hooks(lm, rows: Sequence[Sequence[Push]], start: int = 0):
    """Hooks adding each row's pushes to positions >= ``start`` of this forward call
    (rows are batch rows); removed in ``finally``. Rows without pushes get nothing added."""
    plan = _row_plan(lm, rows)
    handles = []
    try:
        for layer, (const, adapt) in plan.items():
            handles.append(lm.layers[layer].register_forward_hook(_row_hook(const, adapt, start)))
        yield
    finally:
        for h in handles:
            h.remove()


def push_deltas(lm, pushes: Sequence[Push]) -> torch.Tensor:
    """What ``pushes`` add at each layer, summed: (n_layers, d_model) float32, for engines
    that take one constant vector per layer (``relative`` and ``raw`` modes only)."""
    total = torch.zeros(lm.n_layers, lm.hidden_size)
    for p in pushes:
        if p.mode == "adaptive":
            raise IntensityError("adaptive mode adds a per-token amount, not one vector per layer.")
        for layer in p.layer_list(lm.n_layers) if p.intensity else ():
            total[layer] += _base(lm, p.vector, layer, p.mode) * float(p.intensity)
    return total


def _row_plan(lm, rows) -> dict[int, tuple[torch.Tensor, torch.Tensor | None]]:
    """Per steered layer: (constant add (rows, d), adaptive unit directions (rows, d) or None)."""
    plan: dict[int, list] = {}
    for r, pushes in enumerate(rows):
        for p in pushes:
            if not p.intensity:
                continue
            for layer in p.layer_list(lm.n_layers):
                const, adapt = plan.setdefault(layer, [torch.zeros(len(rows), lm.hidden_size), None])
                base = _base(lm, p.vector, layer, p.mode) * float(p.intensity)
                if p.mode == "adaptive":
                    adapt = torch.zeros_like(const) if adapt is None else adapt
                    adapt[r] += base
                    plan[layer][1] = adapt
                else:
                    const[r] += base
    return {layer: (c, a) for layer, (c, a) in plan.items()}


def _row_hook(const: torch.Tensor, adapt: torch.Tensor | None, start: int):
    placed: dict = {}

    def hook(module, args, output):
        hidden = output[0] if isinstance(output, tuple) else output  # (rows, seq, d)
        if start >= hidden.shape[1]:
            return None
        key = (hidden.device, hidden.dtype)
        if key not in placed:  # on the hidden state's own device and dtype
            placed[key] = tuple(None if t is None else t.to(device=hidden.device, dtype=hidden.dtype)[:, None, :]
                                for t in (const, adapt))
        c, a = placed[key]
        tail = hidden[:, start:]
        add = c if a is None else c + a * tail.float().norm(dim=-1, keepdim=True).to(hidden.dtype)
        steered = tail + add if start == 0 else torch.cat([hidden[:, :start], tail + add], dim=1)
        return (steered, *output[1:]) if isinstance(output, tuple) else steered

    return hook
