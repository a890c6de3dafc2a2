"""Gradio layout and event wiring only: the work is in ``session``, ``trials`` and the core.

``build`` lays out the five tabs (one ``*_layout`` function each), then wires their
events (one ``wire_*`` function each): events of one tab write to lists in others, so
every component exists before any event is wired. Rules every event follows, so a live
demo never looks broken:
- ``SteerError`` from the core becomes a ``gr.Error`` toast (``_guard``), logged as one
  line; each long action shows its progress and errors on its own status line
  (``show_progress_on``), so a bad input never turns the plots and sliders into red
  "Error" boxes: every other output keeps what it showed.
- Every list the UI shows (the SLM vectors to steer with, the arms, the files to
  download, the vectors to remove) is rebuilt from the session after every change.
"""

from __future__ import annotations

import functools
import inspect
import logging
from types import SimpleNamespace as Parts

import gradio as gr

from . import contrast, session, trials, zoo
from .errors import SteerError
from .generation import Sampling
from .session import SessionState
from .workbench import ROLES, Workbench

log = logging.getLogger("steer_ui")


def _guard(fn):
    """Turn ``SteerError`` into ``gr.Error`` for plain and generator handlers: one log
    line, no traceback (tracebacks are for real bugs, which are not caught here)."""
    def fail(exc: SteerError):
        log.warning("%s: %s", fn.__name__.removeprefix("do_"), exc)
        return gr.Error(str(exc), print_exception=False)

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen(*a, **k):
            try:
                yield from fn(*a, **k)
            except SteerError as exc:
                raise fail(exc) from exc
        return gen

    @functools.wraps(fn)
    def plain(*a, **k):
        try:
            return fn(*a, **k)
        except SteerError as exc:
            raise fail(exc) from exc
    return plain


def _facts_table(wb: Workbench) -> list[list]:
    facts = {r: wb.models[r].facts() for r in ROLES if r in wb.models}
    keys = ["name", "family", "params", "layers", "hidden size", "device", "dtype", "memory", "load time"]
    return [[k] + [facts.get(r, {}).get(k, "-") for r in ROLES] for k in keys]


def _slider_for(wb: Workbench, role: str, value=None):
    n = wb.models[role].n_layers if role in wb.models else 2
    return gr.update(maximum=max(n - 1, 1), value=min(value if value is not None else n // 2, n - 1))


def _sampling(max_new, temperature, top_p, seed) -> Sampling:
    return Sampling(int(max_new), float(temperature), float(top_p), int(seed))


def _lists(st: SessionState, steer_value: str | None = None) -> tuple:
    """Updates of every list built from the session: steer vector, arms, download, remove."""
    kinds, files = st.vector_kinds(), st.files()
    value = steer_value if steer_value in kinds else (kinds[0] if kinds else None)
    return (gr.update(choices=kinds, value=value), gr.update(choices=kinds, value=kinds),
            gr.update(choices=files, value=files[0] if files else None),
            gr.update(choices=list(st.extra), value=None))


def build(wb: Workbench) -> gr.Blocks:
    """The whole app: Models, Concept, Transfer, Steer and Evaluate tabs over one shared
    ``Workbench``; each browser session's concepts live in its own ``SessionState``."""
    with gr.Blocks(title="steer-ui") as demo:
        gr.Markdown("# steer-ui\nExtract a concept from contrast prompts, see it, carry it from the LLM into "
                    "the SLM, steer with it.")
        ui = Parts(state=gr.State(lambda: SessionState()))
        with gr.Tab("Models"):
            ui.models = models_layout(wb)
        with gr.Tab("Concept"):
            ui.concept = concept_layout(wb)
        with gr.Tab("Transfer"):
            ui.transfer = transfer_layout()
        with gr.Tab("Steer"):
            ui.steer = steer_layout(wb)
        with gr.Tab("Evaluate"):
            ui.evaluate = evaluate_layout()
        ui.lists = [ui.steer.kind, ui.evaluate.arms, ui.concept.download, ui.concept.remove]
        for wire in (wire_models, wire_concept, wire_transfer, wire_steer, wire_evaluate):
            wire(wb, ui)
        demo.load(lambda: [_slider_for(wb, r) for r in ROLES], None,
                  [ui.concept.sliders[r] for r in ROLES], api_visibility="private")
    return demo


# ---------- Models ----------

def models_layout(wb: Workbench) -> Parts:
    m = Parts(facts=gr.Dataframe(value=_facts_table(wb), headers=["", "LLM", "SLM"], interactive=False,
                                 label="Loaded models", elem_id="facts"), pickers={}, loads={}, status={}, chats={})
    with gr.Row():
        for role in ROLES:
            with gr.Column():
                current = wb.models[role].name if role in wb.models else None
                m.pickers[role] = gr.Dropdown(list(zoo.BUNDLED), value=current, allow_custom_value=True,
                                              label=f"{role.upper()}: bundled name, Hub id, folder or .gguf",
                                              elem_id=f"picker-{role}")
                m.loads[role] = gr.Button(f"Load {role.upper()}")
                m.status[role] = gr.Markdown(elem_id=f"load-status-{role}")
                m.chats[role] = (gr.Chatbot(label=f"{role.upper()} chat (unsteered)", height=260),
                                 gr.Textbox(placeholder="Say something and press Enter", show_label=False))
    return m


def wire_models(wb: Workbench, ui: Parts) -> None:
    m, sampling_in = ui.models, ui.steer.sampling
    for role in ROLES:
        def do_load(source, r=role, progress=gr.Progress()):
            lm = wb.load(r, source or "", progress=lambda f, msg: progress(f, desc=msg))
            return _facts_table(wb), _slider_for(wb, r), f"{r.upper()}: **{lm.name}** loaded ({lm.load_seconds:.1f} s)"

        event = m.loads[role].click(_guard(do_load), m.pickers[role],
                                    [m.facts, ui.concept.sliders[role], m.status[role]],
                                    api_name=f"load_{role}", show_progress_on=[m.status[role]])
        # a failed load keeps the working model: the picker shows that one again
        event.failure(lambda r=role: gr.update(value=wb.models[r].name if r in wb.models else None),
                      None, m.pickers[role], api_visibility="private", show_progress="hidden")

        def do_chat(st, history, message, max_new_v, temperature_v, top_p_v, seed_v, r=role):
            history = list(history or []) + [{"role": "user", "content": message},
                                             {"role": "assistant", "content": ""}]
            stop = st.new_stop(f"chat-{r}")
            for text in session.chat_reply(wb, r, history[:-1],
                                           _sampling(max_new_v, temperature_v, top_p_v, seed_v), stop):
                history[-1]["content"] = text
                yield history, ""

        bot, box = m.chats[role]
        box.submit(_guard(do_chat), [ui.state, bot, box, *sampling_in], [bot, box], api_name=f"chat_{role}")


# ---------- Concept ----------

def concept_layout(wb: Workbench) -> Parts:
    c = Parts(sliders={}, bests={}, pcas={})
    with gr.Row():
        c.source = gr.Radio(["Preset", "Two lists", "File"], value="Preset", label="Contrast from")
        c.name = gr.Textbox(value="", label="Concept name", placeholder="the preset's name, or type one, e.g. joy")
        c.limit = gr.Number(value=32, precision=0, label="Max pairs (0 = all)")
        c.method = gr.Dropdown(["mean-diff", "pca", "probe"], value="mean-diff", label="Method")
        c.position = gr.Radio(["last", "mean"], value="last", label="Read position",
                              info="the last token, or the mean of each prompt's own tokens")
    c.preset = gr.Dropdown(contrast.preset_names(), value="happy-sad", label="Preset")
    with gr.Row(visible=False) as c.lists_row:
        c.pos_text = gr.Textbox(lines=5, label="Positive prompts (one per line)",
                                placeholder="Write a joyful note about Monday.")
        c.neg_text = gr.Textbox(lines=5, label="Negative prompts (line i pairs with line i)",
                                placeholder="Write a gloomy note about Monday.")
    c.ab_file = gr.File(label="File: A/B items (CAA JSON/JSONL), a preset copy, or two lists (JSON)",
                        file_types=[".json", ".jsonl"], type="filepath", visible=False)
    c.extract = gr.Button("Extract in both models", variant="primary")
    c.summary = gr.Markdown(elem_id="concept-summary")
    with gr.Row():
        for role in ROLES:
            with gr.Column():
                n = wb.models[role].n_layers if role in wb.models else 2
                with gr.Row():
                    c.sliders[role] = gr.Slider(0, max(n - 1, 1), value=n // 2, step=1, buttons=[], scale=5,
                                                label=f"{role.upper()} layer (view and steer)", elem_id=f"layer-{role}")
                    with gr.Column(scale=0, min_width=110):
                        c.bests[role] = gr.Button("↺ best layer", size="sm")
                c.pcas[role] = gr.Plot(label=f"{role.upper()}: PCA of the contrast prompts", elem_id=f"pca-{role}")
    c.profile = gr.Plot(label="Separability: how well each layer tells the two sides apart", elem_id="profile")
    with gr.Accordion("Vector files: download (safetensors + llama.cpp GGUF), upload, remove", open=False):
        with gr.Row():
            c.download = gr.Dropdown([], label="Vector to download")
            c.save = gr.Button("Prepare downloads")
            c.files = gr.File(label="Vector files", file_count="multiple")
        with gr.Row():
            c.upload = gr.File(label="Upload a vector for the SLM (.safetensors or .gguf)",
                               file_types=[".safetensors", ".gguf"], type="filepath")
            c.remove = gr.Dropdown([], label="A vector you transferred or uploaded")
            c.remove_btn = gr.Button("Remove it from this session")
        c.files_status = gr.Markdown()
    return c


def _views(st: SessionState, llm_layer, slm_layer) -> tuple:
    """Both PCA plots and the separability profile at the sliders' layers."""
    layers = {"llm": llm_layer, "slm": slm_layer}
    return (*[session.pca_figure(st, r, layers[r]) for r in ROLES], session.profile_figure(st, layers))


def wire_concept(wb: Workbench, ui: Parts) -> None:
    c, state = ui.concept, ui.state
    layer_in = [state, c.sliders["llm"], c.sliders["slm"]]
    views_out = [c.pcas["llm"], c.pcas["slm"], c.profile]
    c.source.change(lambda s: (gr.update(visible=s == "Preset"), gr.update(visible=s == "Two lists"),
                               gr.update(visible=s == "File")), c.source, [c.preset, c.lists_row, c.ab_file],
                    api_visibility="private", show_progress="hidden")

    def do_extract(st, src, preset_v, limit_v, method_v, position_v, pos_v, neg_v, ab_v, name_v, kind_v,
                   progress=gr.Progress()):
        cs = session.contrast_from_inputs(src, preset_v, pos_v, neg_v, ab_v, int(limit_v or 0) or None, name_v)
        text = session.extract_both(wb, st, cs, method_v, position_v, progress=lambda f, m: progress(f, desc=m))
        best = {r: st.extractions[r].vector.default_layer for r in st.extractions}
        return (st, text, *[_slider_for(wb, r, best.get(r)) for r in ROLES],
                *_views(st, best.get("llm"), best.get("slm")), *_lists(st, kind_v))

    def do_rescore(st, method_v, llm_layer, slm_layer):
        if not st.extractions:
            return st, gr.update(), gr.update(), gr.update(), gr.update()
        return (st, session.rescore(st, method_v), *_views(st, llm_layer, slm_layer))

    def do_save(st, choice, request: gr.Request):
        folder = zoo.cache_root() / "downloads" / str(request.session_hash if request else "cli")
        folder.mkdir(parents=True, exist_ok=True)
        paths = session.save_vectors(st, choice, folder)
        return paths, "prepared: " + ", ".join(p.rsplit("/", 1)[-1] for p in paths)

    def do_upload(st, path, kind_v):
        added, message = session.upload_vector(wb, st, path)
        return (st, message, *_lists(st, added))

    def do_remove(st, kind_v, steer_v):
        st.remove(kind_v)
        return (st, f"removed **{kind_v}** from this session", *_lists(st, steer_v))

    c.extract.click(_guard(do_extract), [state, c.source, c.preset, c.limit, c.method, c.position, c.pos_text,
                                         c.neg_text, c.ab_file, c.name, ui.steer.kind],
                    [state, c.summary, c.sliders["llm"], c.sliders["slm"], *views_out, *ui.lists],
                    api_name="extract", show_progress_on=[c.summary])
    c.method.change(_guard(do_rescore), [state, c.method, c.sliders["llm"], c.sliders["slm"]],
                    [state, c.summary, *views_out], api_name="rescore", show_progress_on=[c.summary])
    for role in ROLES:
        # .input: dragging, or typing a number, redraws at once (no wait for the box to lose focus)
        c.sliders[role].input(_guard(_views), layer_in, views_out, api_name=f"view_{role}",
                              show_progress="hidden")
        c.bests[role].click(lambda st, r=role: gr.update(value=st.extractions[r].vector.default_layer)
                            if r in st.extractions else gr.update(), state, c.sliders[role], api_visibility="private",
                            show_progress="hidden").then(_guard(_views), layer_in, views_out, api_visibility="private",
                                                         show_progress="hidden")
    c.save.click(_guard(do_save), [state, c.download], [c.files, c.files_status], api_name="save_vector",
                 show_progress_on=[c.files_status])
    c.upload.upload(_guard(do_upload), [state, c.upload, ui.steer.kind], [state, c.files_status, *ui.lists],
                    api_name="upload_vector", show_progress_on=[c.files_status])
    c.remove_btn.click(_guard(do_remove), [state, c.remove, ui.steer.kind], [state, c.files_status, *ui.lists],
                       api_name="remove_vector", show_progress_on=[c.files_status])


# ---------- Transfer ----------

def transfer_layout() -> Parts:
    t = Parts()
    gr.Markdown("Carry the LLM's concept (extracted in the Concept tab) into the SLM. The verdict compares it "
                "with the SLM's own (native) vector and with random vectors sent through the same map: a good "
                "fit (R²) alone is not evidence that a concept arrived.")
    with gr.Row():
        t.map = gr.Dropdown(["ridge", "procrustes"], value="ridge", label="Map")
        t.matching = gr.Radio(["depth", "fit"], value="depth", label="Layer matching",
                              info="same relative depth, or the best linear CKA")
        t.sources = gr.CheckboxGroup(["concept", "neutral"], value=["concept", "neutral"], label="Fit the map on",
                                     info="the other presets' prompts, and/or neutral text")
        t.n_neutral = gr.Slider(64, 1300, value=400, step=1, label="Neutral texts")
    t.run = gr.Button("Transfer", variant="primary")
    t.report = gr.Markdown(elem_id="transfer-report")
    with gr.Row():
        t.plot = gr.Plot(label="Transfer diagnostics by SLM layer")
        t.cka = gr.Plot(label="Linear CKA of every layer pair (fit mode)", visible=False)
    t.pca = gr.Plot(label="SLM: native and transferred directions (PCA)")
    return t


def wire_transfer(wb: Workbench, ui: Parts) -> None:
    t, c = ui.transfer, ui.concept
    t.matching.change(lambda m: gr.update(visible=m == "fit"), t.matching, t.cka, api_visibility="private",
                      show_progress="hidden")

    def do_transfer(st, method_v, matching_v, sources_v, n_v, slm_layer, kind_v, progress=gr.Progress()):
        text, fig, cka, added = trials.transfer_concept(wb, st, method_v, matching_v, list(sources_v or []),
                                                        int(n_v), progress=lambda f, m: progress(f, desc=m))
        return (st, text, fig, gr.update(value=cka, visible=cka is not None),
                session.pca_figure(st, "slm", int(slm_layer)), *_lists(st, added))

    t.run.click(_guard(do_transfer), [ui.state, t.map, t.matching, t.sources, t.n_neutral, c.sliders["slm"],
                                      ui.steer.kind],
                [ui.state, t.report, t.plot, t.cka, t.pca, *ui.lists], api_name="transfer",
                show_progress_on=[t.report])


# ---------- Steer ----------

def steer_layout(wb: Workbench) -> Parts:
    s = Parts()
    with gr.Row():
        s.prompt = gr.Textbox(value="Tell me about your weekend.", label="Prompt", scale=4)
        s.target = gr.Radio(["SLM", "LLM", "Both"], value="SLM", label="Steer")
        s.kind = gr.Dropdown([], value="native", allow_custom_value=True, elem_id="steer-kind", scale=2,
                             label="SLM vector", info="native, random control, transferred, uploaded")
    s.intensity = gr.Slider(-2, 2, value=0.4, step=0.05,
                            label="Intensity (relative: 1.0 = the layer's typical residual norm)")
    with gr.Row():
        s.mode = gr.Radio(["relative", "raw", "adaptive"], value="relative", label="Intensity mode")
        s.positions = gr.Radio(["all", "generated"], value="all", label="Steer positions")
    with gr.Accordion("Sampling", open=False), gr.Row():
        s.sampling = [gr.Slider(1, 256, value=48, step=1, label="Max new tokens"),
                      gr.Slider(0, 2, value=0, step=0.05, label="Temperature (0 = greedy)"),
                      gr.Slider(0.05, 1, value=1, step=0.05, label="Top-p"),
                      gr.Number(value=0, precision=0, label="Seed")]
    with gr.Row():
        s.generate = gr.Button("Generate", variant="primary")
        s.stop = gr.Button("Stop", variant="stop")
    s.status = gr.Markdown("Extract a concept in the Concept tab, then generate.", elem_id="steer-status")
    s.panes = []
    for role in ROLES:
        with gr.Row():
            s.panes += [gr.Textbox(label=f"{role.upper()} unsteered", lines=6, elem_id=f"{role}-plain"),
                        gr.Textbox(label=f"{role.upper()} steered", lines=6, elem_id=f"{role}-steered")]
    note = ("In bfloat16 (this machine's dtype) rows of batches of other sizes can part after a few tokens: "
            "the Sweep's intensity-0 row may then differ from the unsteered pane above."
            if any(str(lm.dtype) == "torch.bfloat16" for lm in wb.models.values()) else "")
    with gr.Accordion("Compare SLM vectors: native, transferred, random, one batch", open=False):
        s.compare = gr.Button("Compare at this intensity and layer")
        s.compare_status = gr.Markdown(elem_id="compare-status")
        s.compare_out = gr.Dataframe(headers=["vector", "text"], wrap=True, column_widths=["18%", "82%"],
                                     label="One row per vector")
    with gr.Accordion("Sweep: several intensities as one batch", open=False):
        with gr.Row():
            s.sweep_role = gr.Radio(["SLM", "LLM"], value="SLM", label="Model")
            s.sweep_values = gr.Textbox(value="-1, -0.5, 0, 0.5, 1", label="Intensities")
            s.sweep = gr.Button("Run sweep")
        s.sweep_status = gr.Markdown(note, elem_id="sweep-status")
        s.sweep_out = gr.Dataframe(headers=["intensity", "text"], wrap=True, column_widths=["12%", "88%"],
                                   label="One row per intensity")
    return s


def wire_steer(wb: Workbench, ui: Parts) -> None:
    s, c, state = ui.steer, ui.concept, ui.state
    steer_in = [state, s.prompt, s.target, s.kind, s.intensity, s.mode, s.positions, c.sliders["llm"],
                c.sliders["slm"], *s.sampling]

    def do_steer(st, prompt_v, target_v, kind_v, x, mode_v, pos_v, llm_layer, slm_layer,
                 max_new_v, temperature_v, top_p_v, seed_v):
        roles = {"SLM": ["slm"], "LLM": ["llm"], "Both": ["llm", "slm"]}[target_v]
        layers = {"llm": int(llm_layer), "slm": int(slm_layer)}
        sampling = _sampling(max_new_v, temperature_v, top_p_v, seed_v)
        for texts, status in session.steer_texts(wb, st, roles, prompt_v, x, layers, kind_v, mode_v, pos_v,
                                                 sampling, st.new_stop("steer")):
            yield (*texts, status)

    def do_sweep(st, role_v, values, prompt_v, kind_v, mode_v, llm_layer, slm_layer,
                 max_new_v, temperature_v, top_p_v, seed_v):
        role = role_v.lower()
        layer = int(llm_layer if role == "llm" else slm_layer)
        sampling = _sampling(max_new_v, temperature_v, top_p_v, seed_v)
        yield from session.sweep_texts(wb, st, role, prompt_v, session.parse_intensities(values), layer,
                                       kind_v, mode_v, sampling, st.new_stop(f"sweep-{role}"))

    def do_compare(st, prompt_v, x, mode_v, slm_layer, max_new_v, temperature_v, top_p_v, seed_v):
        sampling = _sampling(max_new_v, temperature_v, top_p_v, seed_v)
        yield from session.compare_vectors(wb, st, prompt_v, x, int(slm_layer), mode_v, sampling,
                                           st.new_stop("compare"))

    outs = [*s.panes, s.status]
    release = s.intensity.release(_guard(do_steer), steer_in, outs, api_visibility="private", show_progress_on=[s.status])
    # Typing a value then pressing Generate fires the slider's release first: the click
    # supersedes that run instead of generating twice.
    generate = s.generate.click(_guard(do_steer), steer_in, outs, api_name="steer", cancels=[release],
                                show_progress_on=[s.status])
    sweep = s.sweep.click(_guard(do_sweep), [state, s.sweep_role, s.sweep_values, s.prompt, s.kind, s.mode,
                                             c.sliders["llm"], c.sliders["slm"], *s.sampling],
                          [s.sweep_out, s.sweep_status], api_name="sweep", show_progress_on=[s.sweep_status])
    compare = s.compare.click(_guard(do_compare), [state, s.prompt, s.intensity, s.mode, c.sliders["slm"],
                                                   *s.sampling], [s.compare_out, s.compare_status],
                              api_name="compare", show_progress_on=[s.compare_status])
    s.stop.click(lambda st: st.stop_all(), state, None, cancels=[generate, release, sweep, compare], api_name="stop")


# ---------- Evaluate ----------

def evaluate_layout() -> Parts:
    e = Parts()
    gr.Markdown("Arms on a dataset: baseline, and the SLM vectors this session holds, exactly as made (native "
                "as extracted, each transferred vector with its own map and at its own layer, uploaded, random "
                "control). Each arm's intensity is chosen on the dev half and reported on the test half with "
                "95% bootstrap CIs.")
    with gr.Row():
        e.dataset = gr.Dropdown(list(trials.TASK_FILES), value="sentiment (ours, A/B)", label="Dataset")
        e.upload = gr.File(label="or upload (CAA or {prompt, choices, answer} JSON/JSONL)",
                           file_types=[".json", ".jsonl"], type="filepath")
        e.task = gr.Radio(["ab", "generation"], value="ab", label="Task",
                          info="A/B answers, or open generation scored for the concept")
    e.arms = gr.CheckboxGroup([], label="Arms: this session's SLM vectors (each at its own layer)")
    with gr.Row():
        e.scaling = gr.Radio(["dev-sweep", "per-example", "adaptive"], value="dev-sweep", label="Intensity scaling")
        e.grid = gr.Textbox(value="-1, -0.5, -0.25, 0, 0.25, 0.5, 1", label="Intensities")
        e.limit = gr.Number(value=60, precision=0, label="Max items / prompts")
    e.run = gr.Button("Run evaluation", variant="primary")
    e.table = gr.Markdown(elem_id="evaluate-table")
    with gr.Row():
        e.plot1 = gr.Plot(label="The task's score against intensity (test split)")
        e.plot2 = gr.Plot(label="p(match) or perplexity against intensity (test split)")
    return e


def wire_evaluate(wb: Workbench, ui: Parts) -> None:
    e = ui.evaluate

    def do_evaluate(st, dataset_v, upload_v, task_v, arms_v, scaling_v, grid_v, limit_v, progress=gr.Progress()):
        return trials.evaluate(wb, st, dataset_v, upload_v, task_v, list(arms_v or []), scaling_v, grid_v,
                               int(limit_v or 60), progress=lambda f, m: progress(f, desc=m))

    e.run.click(_guard(do_evaluate), [ui.state, e.dataset, e.upload, e.task, e.arms, e.scaling, e.grid, e.limit],
                [e.table, e.plot1, e.plot2], api_name="evaluate", show_progress_on=[e.table])
