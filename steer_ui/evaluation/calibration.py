"""Calibrate: which layer and what intensity steer this concept best without breaking the text.

A grid of layers x intensities is tried on a handful of neutral prompts. Each cell is
scored for **efficacy** (its texts' concept score minus the unsteered texts' score) and
**damage** (the mean per-token KL divergence of the steered next-token distribution from
the unsteered one, read along the steered greedy rollout: how far steering pulls every
step away from what the model would say). Cells whose damage exceeds the guard (default
1 nat/token) are marked broken; the chosen cell is the most effective unbroken one.

Cost: every cell of every prompt is one row of the model's batching scheduler (all
intensities of a layer share one prefill of the prompt), and the KL is two
teacher-forced passes over the rollouts, unsteered and steered, eight rows at a time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..concepts.vectors import ConceptVector
from ..errors import ContrastError, IntensityError, LayerError, out_of_memory
from ..models.tokens import pad_right, token_ids
from ..steering.engines import scheduler_for
from ..steering.hooks import Push, check_fits, check_intensities, row_hooks
from ..steering.scheduler import Sampling

Scorer = Callable[[list[str]], np.ndarray]  # texts -> concept score per text (higher: positive side)
DEFAULT_INTENSITIES = (0.15, 0.3, 0.5, 0.8)
DEFAULT_INTENSITY = 0.4  # what the app starts at, with the middle layer: the cell to beat
MAX_CELLS, MAX_PROMPTS, MIN_PROMPTS = 64, 16, 2
KL_GUARD = 1.0  # nats per token


@dataclass(frozen=True)
class Cell:
    """One layer x intensity setting and what it did on the prompts."""

    layer: int
    intensity: float
    score: float  # mean concept score of its texts
    efficacy: float  # score - the unsteered texts' score
    kl: float  # mean per-token KL(steered || unsteered), nats
    broken: bool = False
    per_prompt: tuple[float, ...] = ()  # the score of each prompt's text (for paired CIs)


@dataclass(frozen=True)
class Calibration:
    """The grid, what was chosen, and why."""

    model: str
    vector: str
    scorer: str
    prompts: list[str]
    baseline: float  # unsteered texts' mean score
    cells: list[Cell]
    chosen: Cell | None
    default: Cell
    guard: float
    seconds: float
    notes: list[str] = field(default_factory=list)

    def matrix(self, key: str = "efficacy") -> tuple[list[int], list[float], np.ndarray]:
        """(layers, intensities, values (layers, intensities)) of the grid for a heatmap."""
        layers = sorted({c.layer for c in self.cells})
        values = sorted({c.intensity for c in self.cells})
        grid = np.full((len(layers), len(values)), np.nan)
        for c in self.cells:
            grid[layers.index(c.layer), values.index(c.intensity)] = getattr(c, key)
        return layers, values, grid

    def reason(self) -> str:
        """What was chosen and why, in one paragraph."""
        broken = sum(c.broken for c in self.cells)
        d = self.default
        vs = (f"the default (layer {d.layer}, {d.intensity:g}) moves it {d.efficacy:+.3f} at KL {d.kl:.2f}"
              + (" and is broken" if d.broken else ""))
        if self.chosen is None:
            return (f"No unbroken cell moved the {self.scorer} up ({broken} of {len(self.cells)} cells "
                    f"broke the {self.guard:g} nat/token guard); {vs}. Try other layers or lower intensities.")
        c = self.chosen
        return (f"Chose layer {c.layer}, intensity {c.intensity:g}: the {self.scorer} goes from "
                f"{self.baseline:.3f} unsteered to {c.score:.3f} ({c.efficacy:+.3f}) at KL {c.kl:.2f} nat/token, "
                f"the most effective {'cell' if c in self.cells else 'setting (the default)'} under the "
                f"{self.guard:g} nat/token guard ({broken} of {len(self.cells)} cells broken); {vs}. {len(self.prompts)} prompts, {self.seconds:.0f} s.")


def default_layers(n_layers: int, step: int | None = None) -> list[int]:
    """Every ``step``-th layer (default: 5 of them) from 10% to 90% of the depth."""
    lo, hi = max(1, round(0.1 * n_layers)), min(n_layers - 1, round(0.9 * n_layers))
    step = step or max(1, (hi - lo) // 4)
    return list(range(lo, hi + 1, step))


def check_grid(lm, prompts: Sequence[str], layers: Sequence[int], intensities: Sequence[float]) -> list[float]:
    """Clear errors for a grid that cannot or should not run; the intensities, checked."""
    prompts = [p for p in prompts if p.strip()]
    if len(prompts) < MIN_PROMPTS:
        raise ContrastError(f"Calibration needs at least {MIN_PROMPTS} neutral prompts (got {len(prompts)}): "
                            "one prompt says too little about a setting. Add some, one per line.")
    if len(prompts) > MAX_PROMPTS:
        raise ContrastError(f"{len(prompts)} prompts is more than calibration's cap of {MAX_PROMPTS}: "
                            "a handful says as much and keeps it under a minute. Keep the first few.")
    bad = [i for i in layers if not 0 <= i < lm.n_layers]
    if bad or not layers:
        raise LayerError(f"Layers {bad or 'none'}: {lm.name} has layers 0..{lm.n_layers - 1}.")
    values = check_intensities(intensities)
    if not values or len(values) > 8:
        raise IntensityError(f"Give 1 to 8 intensities to try (got {len(values)}).")
    if len(layers) * len(values) > MAX_CELLS:
        raise IntensityError(f"A grid of {len(layers)} layers x {len(values)} intensities is "
                             f"{len(layers) * len(values)} cells, more than the cap of {MAX_CELLS}: "
                             "take every k-th layer or fewer intensities.")
    return values


def calibrate(lm, vector: ConceptVector, scorer: Scorer, scorer_name: str, prompts: Sequence[str],
              layers: Sequence[int] | None = None, intensities: Sequence[float] = DEFAULT_INTENSITIES,
              max_new_tokens: int = 24, guard: float = KL_GUARD, progress=None) -> Calibration:
    """Sweep ``layers`` x ``intensities`` on ``prompts`` and choose the best unbroken cell."""
    start = time.perf_counter()
    check_fits(vector, lm)
    if not (isinstance(guard, (int, float)) and 0 < guard < float("inf")):
        raise IntensityError(f"The damage guard {guard!r} must be a positive number of nats per token, e.g. 1.")
    layers = sorted(set(default_layers(lm.n_layers) if layers is None else layers))
    values = check_grid(lm, prompts, layers, intensities)
    prompts = [p for p in prompts if p.strip()]
    default = (lm.n_layers // 2, DEFAULT_INTENSITY)
    settings = [(i, x) for i in layers for x in values]
    baseline, cells = measure(lm, vector, scorer, prompts, settings + [default] * (default not in settings),
                              max_new_tokens, guard, progress)
    grid = cells[: len(settings)]
    default_cell = cells[settings.index(default)] if default in settings else cells[-1]
    # The default is a candidate too: calibration never chooses worse than it on its own prompts.
    fine = [c for c in grid + [default_cell] if not c.broken and c.efficacy > 0]
    chosen = max(fine, key=lambda c: (round(c.efficacy, 6), -c.kl)) if fine else None
    return Calibration(lm.name, vector.name, scorer_name, prompts, baseline, grid, chosen, default_cell,
                       guard, time.perf_counter() - start)


def measure(lm, vector: ConceptVector, scorer: Scorer, prompts: Sequence[str],
            settings: Sequence[tuple[int, float]], max_new_tokens: int = 24, guard: float = KL_GUARD,
            progress=None) -> tuple[float, list[Cell]]:
    """The unsteered score and one ``Cell`` per (layer, intensity) on ``prompts`` (greedy)."""
    texts = [lm.chat(p) for p in prompts]
    rollouts = _rollouts(lm, vector, texts, settings, max_new_tokens, progress)
    base = float(np.mean(scorer(_decode(lm, [r[None] for r in rollouts]))))
    cells = []
    for k, (layer, x) in enumerate(settings):
        rows = [r[k] for r in rollouts]  # this setting's rollout of every prompt
        scores = [float(v) for v in scorer(_decode(lm, rows))]
        kl = _mean_kl(lm, vector, texts, rows, layer, x)
        cells.append(Cell(layer, x, float(np.mean(scores)), float(np.mean(scores)) - base, kl, kl > guard,
                          tuple(scores)))
    return base, cells


def _rollouts(lm, vector, texts, settings, max_new_tokens, progress) -> list[dict]:
    """Greedy new tokens per prompt: {None: unsteered, k: settings[k]}; all submitted at
    once, so the scheduler batches them (one ticket per prompt and layer)."""
    sampling = Sampling(max_new_tokens, 0.0, 1.0, 0)
    jobs = []  # (prompt index, setting indices or [None], ticket)
    for p, text in enumerate(texts):
        jobs.append((p, [None], _submit(lm, text, [()], sampling)))
        for layer in dict.fromkeys(i for i, _ in settings):
            ks = [k for k, (i, _) in enumerate(settings) if i == layer]
            rows = [(Push(vector, settings[k][1], (layer,)),) for k in ks]
            jobs.append((p, ks, _submit(lm, text, rows, sampling)))
    out: list[dict] = [{} for _ in texts]
    for n, (p, ks, ticket) in enumerate(jobs):
        for k, tokens in zip(ks, _finish(ticket)):
            out[p][k] = tokens
        if progress:
            progress((n + 1) / len(jobs), "generating the grid's rollouts")
    return out


def _submit(lm, text, rows, sampling):
    return scheduler_for(lm, rows, "all").submit(text, rows, sampling, "all")


def _finish(ticket) -> list[list[int]]:
    while True:
        kind, *rest = ticket.events.get()
        if kind == "error":
            raise rest[0]
        if kind == "done":
            return [list(t) for t in ticket.tokens]


def _decode(lm, rows: list[list[int]]) -> list[str]:
    return lm.tokenizer.batch_decode(rows, skip_special_tokens=True)


def _mean_kl(lm, vector, texts, rows, layer, intensity, chunk: int = 8) -> float:
    """Mean per-token KL(steered || unsteered) over the generated positions of ``rows``."""
    total, count = 0.0, 0
    prompts = token_ids(lm, texts)
    for b in range(0, len(rows), chunk):
        seqs = [p + r for p, r in zip(prompts[b: b + chunk], rows[b: b + chunk])]
        starts = [len(p) - 1 for p in prompts[b: b + chunk]]  # the position predicting the first new token
        ids, mask = pad_right(seqs, lm.tokenizer.pad_token_id or 0)  # (rows, seq)
        pushes = [(Push(vector, intensity, (layer,)),)] * len(seqs)
        first = min(starts)
        with lm.lock, torch.inference_mode(), out_of_memory("measuring calibration damage", "use fewer prompts."):
            plain = _logprobs(lm, ids, mask, first)
            with row_hooks(lm, pushes):
                steered = _logprobs(lm, ids, mask, first)
        kl = (steered.exp() * (steered - plain)).sum(-1)  # (rows, seq - first)
        for r, (s, n) in enumerate(zip(starts, mask.sum(1).tolist())):
            total += float(kl[r, s - first: n - 1 - first].sum())
            count += max(n - 1 - s, 0)
    return total / max(count, 1)


def _logprobs(lm, ids, mask, first: int) -> torch.Tensor:
    """Log-probabilities from position ``first`` on (the prompt's are never read)."""
    out = lm.model(input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device), use_cache=False,
                   logits_to_keep=torch.arange(first, ids.shape[1], device=lm.device))
    return torch.log_softmax(out.logits.float(), -1).cpu()  # (rows, seq - first, vocab)


def concept_scorer(lm, extraction) -> tuple[str, Scorer]:
    """How calibration scores a text for the concept: the preset's own scorer; else a
    classifier trained on the user's two lists (4+ prompts a side); else the text's mean
    residual projected on the direction at its best layer, z-scored against the contrast set."""
    from ..concepts.contrast import preset_ref
    from .textscore import classifier, scorer_for

    cs = extraction.contrast
    preset = preset_ref(cs.source)
    if preset:
        s = scorer_for(preset)
        return f"{preset} {s.kind} score", s.score
    if len(cs) >= 4 and not cs.letters:
        clf = classifier([p.user for p in cs.positive], [p.user for p in cs.negative])
        return "classifier trained on your two lists", lambda texts: clf.predict_proba(list(texts))[:, 1]
    return "projection on the concept direction", _projection_scorer(lm, extraction)


def _projection_scorer(lm, extraction) -> Scorer:
    from ..concepts.recording import record

    v, layer = extraction.vector, extraction.vector.default_layer
    ref = torch.cat([extraction.pos[:, layer], extraction.neg[:, layer]]) @ v.unit(layer)  # (2n,)

    def score(texts: list[str]) -> np.ndarray:
        acts = record(lm, [t if t.strip() else "." for t in texts], "mean")[:, layer]  # (n, d)
        return ((acts @ v.unit(layer) - ref.mean()) / ref.std().clamp_min(1e-6)).numpy()

    return score
