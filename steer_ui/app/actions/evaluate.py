"""The Evaluate tab: the session's own vectors as arms on a dataset, dev/test split."""

from __future__ import annotations

import datetime as _dt
import tempfile
from pathlib import Path

import plotly.graph_objects as go

from ...concepts.contrast import preset_ref
from ...config import ASSETS
from ...errors import DatasetError, SteerError
from ...evaluation import experiment, fluency, report, scoring
from ...evaluation.experiment import Arm
from ...evaluation.fluency import fluency_warning
from ...evaluation.textscore import scorer_for
from ..pool import Pair
from ..session_file import concept_of
from ..state import SessionState
from .steer import parse_intensities

TASK_FILES = {"sentiment (ours, A/B)": "tasks/sentiment_ab.jsonl", "true/false (ours, A/B)": "tasks/truefalse_ab.jsonl",
              "neutral prompts (generation)": "neutral_prompts.txt"}


TITLES = {"accuracy": "Accuracy", "p_match": "p(match): probability of the right answer",
          "efficacy": "Concept score of the generated text", "perplexity": "Perplexity of neutral text (damage)"}


# The arm without a vector: the SLM told the concept in its system prompt (AxBench's baseline).
PROMPTING = "prompting (the concept in the system prompt)"


MIN_TEST_ITEMS = 50  # below this a 95% CI of an accuracy spans more than +-0.14: too wide to tell arms apart


METRIC_MEANING = {"accuracy": "share of test items answered right",
                  "efficacy": "mean concept score of the generated text (1 = reads like the positive side)"}


def session_arms(wb: Pair, state: SessionState, kinds: list[str]) -> list:
    """The arms of an evaluation: baseline plus each chosen vector the session holds,
    exactly as it was made, steered at its own default layer (a transferred vector at
    the layer its map carried the LLM's best layer to, never the native vector's)."""
    slm = wb.get("slm")
    if not kinds:
        raise SteerError("Pick at least one vector to evaluate (the Arms list: native, transferred, "
                         "uploaded, random control).")
    known = state.vector_kinds()
    arms = [Arm("baseline", slm, None, None)]
    for kind in kinds:
        if kind == PROMPTING:
            arms.append(_prompting(slm, state))
            continue
        if kind not in known:
            raise SteerError(f"This session holds no {kind!r} vector any more: pick among {', '.join(known)}.")
        v = state.vector("slm", kind)
        layer = v.default_layer if v.default_layer is not None else slm.n_layers // 2
        arms.append(Arm(kind, slm, v, layer))
    return arms


def _prompting(slm, state: SessionState) -> Arm:
    """The SLM unsteered, told the concept's positive persona in its system prompt."""
    source = state.extractions["slm"].contrast.source if "slm" in state.extractions else ""
    try:
        return experiment.prompting_arm(slm, experiment.prompting_instruction(source))
    except DatasetError:
        raise DatasetError("The prompting arm tells the SLM a preset's persona: extract a preset concept "
                           "(Concept tab), or leave the prompting arm out.") from None


def evaluate(wb: Pair, state: SessionState, dataset: str, upload: str | None, task: str, kinds: list[str],
             scaling: str, intensities: str, limit: int, progress=None) -> tuple[str, go.Figure, go.Figure]:
    """Run the experiment on the session's own vectors; returns a table and two plots."""
    result, metrics = run_experiment(wb, state, dataset, upload, task, kinds, scaling, intensities, limit, progress)
    return _results_markdown(result, metrics[0]), *figures(result, metrics)


def evaluate_for_download(wb: Pair, state: SessionState, dataset: str, upload: str | None, task: str,
                          kinds: list[str], scaling: str, intensities: str, limit: int, progress=None,
                          folder: str | Path | None = None) -> tuple[str, go.Figure, go.Figure, list[str]]:
    """``evaluate``, plus the files to download: the result JSON and each plot as HTML
    (PNG too where kaleido can render), in a fresh temporary folder unless ``folder``."""
    result, metrics = run_experiment(wb, state, dataset, upload, task, kinds, scaling, intensities, limit, progress)
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    name = f"evaluation-{concept_of(state)}-{task}-{date}-"
    prefix = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
    folder = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="steer-ui-evaluation-"))
    titles = {m: f"{TITLES[m]} (test split)" for m in metrics}
    files = report.write(result, folder, task, prefix=prefix, titles=titles)
    return _results_markdown(result, metrics[0]), *figures(result, metrics), [str(f) for f in files]


def figures(result: dict, metrics: tuple[str, str]) -> list[go.Figure]:
    """The two plots of a result, as the Evaluate tab shows them."""
    return [report.curves_figure(result, m, f"{TITLES[m]} (test split)") for m in metrics]


def run_experiment(wb: Pair, state: SessionState, dataset: str, upload: str | None, task: str, kinds: list[str],
                   scaling: str, intensities: str, limit: int, progress=None) -> tuple[dict, tuple[str, str]]:
    """The experiment's result dict and its two metrics (the table's first)."""
    grid = parse_intensities(intensities, limit=12)
    path = upload or str(ASSETS / TASK_FILES.get(dataset, dataset))
    arms = session_arms(wb, state, kinds)
    texts = fluency.heldout_texts(16)
    if task == "generation":
        ex = state.extractions.get("slm")
        preset = preset_ref(ex.contrast.source) if ex else None
        if preset is None:
            raise SteerError("The generation task scores text with a preset's scorer: extract the concept "
                             "from a preset (Concept tab), or use the A/B task.")
        prompts = [t for t in open(path, encoding="utf-8").read().splitlines() if t.strip()][:limit]
        result = experiment.run_generation(arms, scorer_for(preset), prompts, grid, 24, 0, texts, progress)
        metrics = ("efficacy", "perplexity")
    else:
        items = scoring.load_items(path)[:limit]
        result = experiment.run(arms, items, grid, scaling, 0, texts, progress)
        metrics = ("accuracy", "p_match")
    result["vectors"] = {a.name: a.vector.name for a in arms if a.vector is not None}
    return result, metrics


def _results_markdown(result: dict, key: str) -> str:
    items = result.get("n_test_items", result["n_test"])
    second = ("p(match), in the second plot, is the probability the model gives the right answer among the "
              "item's choices" if key == "accuracy" else
              "the second plot is the perplexity of neutral text under steering (damage)")
    rows = [f"**{key}**: {METRIC_MEANING[key]}. Test split: {items} items ({result['n_test']} rows with any "
            f"letter-swapped copies; CIs resample items), dev split: {result['n_dev']} rows. Each arm's "
            f"intensity was chosen on dev; {second}.", ""]
    if items < MIN_TEST_ITEMS:
        rows += [f"⚠ **Too few items to tell**: {items} test items (under {MIN_TEST_ITEMS}); differences "
                 "between arms this small are noise. Use a larger dataset or raise the item limit.", ""]
    rows += [f"| arm | vector | layer | intensity | {key} [95% CI] | Δ vs baseline [95% CI] | perplexity |",
             "|---|---|---|---|---|---|---|"]
    vectors = result.get("vectors", {})
    base_ppl = result["arms"].get("baseline", {}).get("perplexity")
    warnings = []
    for name, arm in result["arms"].items():
        t, x = arm["test"], arm["intensity"]
        x = "per item" if isinstance(x, dict) else x
        ppl = arm.get("perplexity")
        delta = t.get("delta_vs_baseline")
        layer = "-" if arm.get("layer") is None else arm["layer"]
        delta_cell = "-" if delta is None else f"{delta:+.3f} {_fmt(t.get('delta_ci'))}"
        rows.append(f"| {name} | {vectors.get(name, '-')} | {layer} | {x} | {t[key]:.3f} {_fmt(t.get(key + '_ci'))} | "
                    f"{delta_cell} | {'-' if ppl is None else f'{ppl:.1f}'} |")
        if ppl and base_ppl and (w := fluency_warning(ppl, base_ppl)):
            warnings.append(f"⚠ {name}: {w}")
    return "\n\n".join(["\n".join(rows), *warnings])


def _fmt(ci) -> str:
    return "" if not ci else f"[{ci[0]:.3f}, {ci[1]:.3f}]"
