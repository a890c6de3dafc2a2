"""Gradio layout and event wiring only: the work is in ``session`` and the core.

``SteerError`` from the core becomes ``gr.Error`` here (``_guard``), so a bad input
shows a message and the app keeps serving.
"""

from __future__ import annotations

import functools
import inspect

import gradio as gr

from . import contrast, session, trials, zoo
from .errors import SteerError
from .generation import Sampling
from .session import SessionState
from .workbench import ROLES, Workbench


def _guard(fn):
    """Turn ``SteerError`` into ``gr.Error`` for plain and generator handlers."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen(*a, **k):
            try:
                yield from fn(*a, **k)
            except SteerError as exc:
                raise gr.Error(str(exc)) from exc
        return gen

    @functools.wraps(fn)
    def plain(*a, **k):
        try:
            return fn(*a, **k)
        except SteerError as exc:
            raise gr.Error(str(exc)) from exc
    return plain


def _facts_table(wb: Workbench) -> list[list]:
    facts = {r: wb.models[r].facts() for r in ROLES if r in wb.models}
    keys = ["name", "family", "params", "layers", "hidden size", "device", "dtype", "memory", "load time"]
    return [[k] + [facts.get(r, {}).get(k, "-") for r in ROLES] for k in keys]


def _slider_for(wb: Workbench, role: str, value=None):
    n = wb.models[role].n_layers if role in wb.models else 2
    return gr.update(maximum=max(n - 1, 1), value=min(value if value is not None else n // 2, n - 1))


def _arms_update(st: SessionState):
    """The Evaluate tab's arm choices: every SLM vector the session holds, all ticked."""
    kinds = st.vector_kinds()
    return gr.update(choices=kinds, value=kinds)


def _sampling(max_new, temperature, top_p, seed) -> Sampling:
    return Sampling(int(max_new), float(temperature), float(top_p), int(seed))


def build(wb: Workbench) -> gr.Blocks:
    """The whole app: Models, Concept and Steer tabs over one shared ``Workbench``."""
    names = list(zoo.BUNDLED)
    with gr.Blocks(title="steer-ui") as demo:
        state = gr.State(lambda: SessionState())
        gr.Markdown("# steer-ui\nExtract a concept from contrast prompts, see it, steer with it.")
        with gr.Tab("Models"):
            facts = gr.Dataframe(value=_facts_table(wb), headers=["", "LLM", "SLM"], interactive=False)
            pickers, loads, chats = {}, {}, {}
            with gr.Row():
                for role in ROLES:
                    with gr.Column():
                        current = wb.models[role].name if role in wb.models else None
                        pickers[role] = gr.Dropdown(names, value=current, allow_custom_value=True,
                                                    label=f"{role.upper()}: bundled name, Hub id, folder or .gguf")
                        loads[role] = gr.Button(f"Load {role.upper()}")
                        chats[role] = (gr.Chatbot(label=f"{role.upper()} chat (unsteered)", height=260),
                                       gr.Textbox(placeholder="Say something and press Enter", show_label=False))
        with gr.Tab("Concept"):
            with gr.Row():
                source = gr.Radio(["Preset", "Two lists", "File"], value="Preset", label="Contrast from")
                preset = gr.Dropdown(contrast.preset_names(), value="happy-sad", label="Preset")
                limit = gr.Number(value=32, precision=0, label="Max pairs (0 = all)")
                method = gr.Dropdown(["mean-diff", "pca", "probe"], value="mean-diff", label="Method")
                position = gr.Radio(["last", "mean"], value="last", label="Read position")
            with gr.Row():
                pos_text = gr.Textbox(lines=5, label="Positive prompts (one per line)",
                                      placeholder="Write a joyful note about Monday.")
                neg_text = gr.Textbox(lines=5, label="Negative prompts (line i pairs with line i)",
                                      placeholder="Write a gloomy note about Monday.")
                ab_file = gr.File(label="File: A/B items (CAA JSON/JSONL), a preset copy, or two lists (JSON)",
                                  file_types=[".json", ".jsonl"], type="filepath")
            extract_btn = gr.Button("Extract in both models", variant="primary")
            summary = gr.Markdown()
            sliders, pcas = {}, {}
            with gr.Row():
                for role in ROLES:
                    with gr.Column():
                        n = wb.models[role].n_layers if role in wb.models else 2
                        sliders[role] = gr.Slider(0, max(n - 1, 1), value=n // 2, step=1,
                                                  label=f"{role.upper()} layer (view and steer)")
                        pcas[role] = gr.Plot(label=f"{role.upper()} PCA")
            profile = gr.Plot(label="Separability by depth")
            with gr.Accordion("Vector files: download (safetensors + llama.cpp GGUF) or upload", open=False):
                with gr.Row():
                    save_role = gr.Radio(["slm", "llm"], value="slm", label="Model")
                    save_btn = gr.Button("Prepare downloads")
                    files_out = gr.File(label="Vector files", file_count="multiple")
                    upload_in = gr.File(label="Upload a vector for the SLM (.safetensors or .gguf)",
                                        file_types=[".safetensors", ".gguf"], type="filepath")
        with gr.Tab("Transfer"):
            gr.Markdown("Carry the LLM's concept (extracted in the Concept tab) into the SLM. The verdict "
                        "compares it with the SLM's native vector and with random vectors sent through "
                        "the same map: R^2 alone is not evidence that a concept arrived.")
            with gr.Row():
                map_kind = gr.Dropdown(["ridge", "procrustes"], value="ridge", label="Map")
                matching = gr.Radio(["depth", "fit"], value="depth", label="Layer matching")
                map_sources = gr.CheckboxGroup(["concept", "neutral"], value=["concept", "neutral"],
                                               label="Fit the map on")
                n_neutral = gr.Slider(64, 1300, value=400, step=1, label="Neutral texts")
            transfer_btn = gr.Button("Transfer", variant="primary")
            transfer_md = gr.Markdown()
            with gr.Row():
                transfer_plot = gr.Plot(label="Diagnostics by layer")
                cka_plot = gr.Plot(label="Layer-pair scores (fit mode)")
            slm_pca_transfer = gr.Plot(label="SLM PCA: native and transferred directions")
        with gr.Tab("Steer"):
            with gr.Row():
                prompt = gr.Textbox(value="Tell me about your weekend.", label="Prompt", scale=3)
                target = gr.Radio(["SLM", "LLM", "Both"], value="SLM", label="Steer")
                kind = gr.Dropdown(["native", "random control"], value="native", label="SLM vector")
            intensity = gr.Slider(-2, 2, value=0.4, step=0.05,
                                  label="Intensity (relative: 1.0 = the layer's typical residual norm)")
            with gr.Row():
                mode = gr.Radio(["relative", "raw", "adaptive"], value="relative", label="Intensity mode")
                positions = gr.Radio(["all", "generated"], value="all", label="Steer positions")
            with gr.Accordion("Sampling", open=False), gr.Row():
                max_new = gr.Slider(1, 256, value=48, step=1, label="Max new tokens")
                temperature = gr.Slider(0, 2, value=0, step=0.05, label="Temperature (0 = greedy)")
                top_p = gr.Slider(0.05, 1, value=1, step=0.05, label="Top-p")
                seed = gr.Number(value=0, precision=0, label="Seed")
            with gr.Row():
                gen_btn = gr.Button("Generate", variant="primary")
                stop_btn = gr.Button("Stop", variant="stop")
            outs = []
            for role in ROLES:
                with gr.Row():
                    outs += [gr.Textbox(label=f"{role.upper()} unsteered", lines=6, elem_id=f"{role}-plain"),
                             gr.Textbox(label=f"{role.upper()} steered", lines=6, elem_id=f"{role}-steered")]
            with gr.Accordion("Compare SLM vectors: native, transferred, random, one batch", open=False):
                compare_btn = gr.Button("Compare at this intensity")
                compare_out = gr.Dataframe(headers=["vector", "text"], wrap=True)
            with gr.Accordion("Sweep: several intensities as one batch", open=False):
                with gr.Row():
                    sweep_role = gr.Radio(["SLM", "LLM"], value="SLM", label="Model")
                    sweep_values = gr.Textbox(value="-1, -0.5, 0, 0.5, 1", label="Intensities")
                    sweep_btn = gr.Button("Run sweep")
                sweep_out = gr.Dataframe(headers=["intensity", "text"], wrap=True)

        with gr.Tab("Evaluate"):
            gr.Markdown("Arms (baseline and the SLM vectors this session holds: native as extracted, "
                        "transferred with their own map and layer, uploaded, random control) on a dataset: "
                        "intensity chosen on the dev half, reported on the test half with 95% bootstrap CIs.")
            with gr.Row():
                dataset = gr.Dropdown(list(trials.TASK_FILES), value="sentiment (ours, A/B)", label="Dataset")
                upload = gr.File(label="or upload (CAA or {prompt, choices, answer} JSON/JSONL)",
                                 file_types=[".json", ".jsonl"], type="filepath")
                task = gr.Radio(["ab", "generation"], value="ab", label="Task")
            with gr.Row():
                eval_arms = gr.CheckboxGroup(["native", "random control"], value=["native", "random control"],
                                             label="Arms: this session's SLM vectors (each at its own layer)")
                scaling = gr.Radio(["dev-sweep", "per-example", "adaptive"], value="dev-sweep",
                                   label="Intensity scaling")
                grid = gr.Textbox(value="-1, -0.5, -0.25, 0, 0.25, 0.5, 1", label="Intensities")
                eval_limit = gr.Number(value=60, precision=0, label="Max items / prompts")
            eval_btn = gr.Button("Run evaluation", variant="primary")
            eval_md = gr.Markdown()
            with gr.Row():
                eval_plot1, eval_plot2 = gr.Plot(), gr.Plot()

        # ---- handlers (thin: everything real happens in session / the core) ----
        def load(role, source, progress=gr.Progress()):
            wb.load(role, source or "", progress=lambda f, m: progress(f, desc=m))
            return _facts_table(wb), _slider_for(wb, role)

        def chat(role, st, history, message, max_new_v, temperature_v, top_p_v, seed_v):
            history = list(history or []) + [{"role": "user", "content": message},
                                             {"role": "assistant", "content": ""}]
            stop = st.new_stop()
            for text in session.chat_reply(wb, role, history[:-1],
                                           _sampling(max_new_v, temperature_v, top_p_v, seed_v), stop):
                history[-1]["content"] = text
                yield history, ""

        def do_extract(st, src, preset_v, limit_v, method_v, position_v, pos_v, neg_v, ab_v,
                       progress=gr.Progress()):
            cs = session.contrast_from_inputs(src, preset_v, pos_v, neg_v, ab_v, int(limit_v or 0) or None)
            text = session.extract_both(wb, st, cs, method_v, position_v,
                                        progress=lambda f, m: progress(f, desc=m))
            layers = {r: st.extractions[r].vector.default_layer for r in st.extractions}
            return (st, text, *[_slider_for(wb, r, layers.get(r)) for r in ROLES],
                    *[session.pca_figure(st, r, layers.get(r)) for r in ROLES], session.profile_figure(st),
                    _arms_update(st))

        def do_rescore(st, method_v):
            if not st.extractions:
                return st, gr.update(), gr.update(), gr.update(), gr.update()
            text = session.rescore(st, method_v)
            return (st, text, *[session.pca_figure(st, r, None) for r in ROLES], session.profile_figure(st))

        def do_steer(st, prompt_v, target_v, kind_v, x, mode_v, pos_v, llm_layer, slm_layer,
                     max_new_v, temperature_v, top_p_v, seed_v):
            roles = {"SLM": ["slm"], "LLM": ["llm"], "Both": ["llm", "slm"]}[target_v]
            stop = st.new_stop()
            layers = {"llm": int(llm_layer), "slm": int(slm_layer)}
            yield from session.steer_texts(wb, st, roles, prompt_v, x, layers, kind_v, mode_v, pos_v,
                                           _sampling(max_new_v, temperature_v, top_p_v, seed_v), stop)

        def do_sweep(st, role_v, values, prompt_v, kind_v, mode_v, llm_layer, slm_layer,
                     max_new_v, temperature_v, top_p_v, seed_v):
            role = role_v.lower()
            stop = st.new_stop()
            layer = int(llm_layer if role == "llm" else slm_layer)
            yield from session.sweep_texts(wb, st, role, prompt_v, session.parse_intensities(values), layer,
                                           kind_v, mode_v, _sampling(max_new_v, temperature_v, top_p_v, seed_v),
                                           stop)

        def do_transfer(st, method_v, matching_v, sources_v, n_v, slm_layer, progress=gr.Progress()):
            text, fig, cka = trials.transfer_concept(wb, st, method_v, matching_v, list(sources_v or []),
                                                      int(n_v), progress=lambda f, m: progress(f, desc=m))
            kinds = st.vector_kinds()
            return (st, text, fig, cka, session.pca_figure(st, "slm", int(slm_layer)),
                    gr.update(choices=kinds, value=kinds[-1]), _arms_update(st))

        def do_compare(st, prompt_v, x, mode_v, slm_layer, max_new_v, temperature_v, top_p_v, seed_v):
            stop = st.new_stop()
            yield from session.compare_vectors(wb, st, prompt_v, x, int(slm_layer), mode_v,
                                               _sampling(max_new_v, temperature_v, top_p_v, seed_v), stop)

        def do_evaluate(st, dataset_v, upload_v, task_v, arms_v, scaling_v, grid_v, limit_v,
                        progress=gr.Progress()):
            return trials.evaluate(wb, st, dataset_v, upload_v, task_v, list(arms_v or []), scaling_v, grid_v,
                                    int(limit_v or 60), progress=lambda f, m: progress(f, desc=m))

        def do_save(st, role_v, kind_v, request: gr.Request):
            folder = zoo.cache_root() / "downloads" / str(request.session_hash if request else "cli")
            folder.mkdir(parents=True, exist_ok=True)
            return session.save_vectors(st, role_v, kind_v if role_v == "slm" else "native", folder)

        def do_upload(st, path):
            added = session.upload_vector(wb, st, path)
            return st, gr.update(choices=st.vector_kinds(), value=added), _arms_update(st)

        def do_stop(st):
            st.stop_all()

        # ---- wiring ----
        sampling_in = [max_new, temperature, top_p, seed]
        for role in ROLES:
            loads[role].click(_guard(functools.partial(load, role)), pickers[role], [facts, sliders[role]],
                              api_name=f"load_{role}")
            bot, box = chats[role]
            box.submit(_guard(functools.partial(chat, role)), [state, bot, box, *sampling_in], [bot, box],
                       api_name=f"chat_{role}")
            sliders[role].release(_guard(lambda st, layer, r=role: session.pca_figure(st, r, layer)),
                                  [state, sliders[role]], pcas[role], api_name=f"view_{role}")
        extract_btn.click(_guard(do_extract), [state, source, preset, limit, method, position, pos_text,
                                               neg_text, ab_file],
                          [state, summary, sliders["llm"], sliders["slm"], pcas["llm"], pcas["slm"], profile,
                           eval_arms], api_name="extract")
        method.change(_guard(do_rescore), [state, method], [state, summary, pcas["llm"], pcas["slm"], profile],
                      api_name="rescore")
        transfer_btn.click(_guard(do_transfer), [state, map_kind, matching, map_sources, n_neutral, sliders["slm"]],
                           [state, transfer_md, transfer_plot, cka_plot, slm_pca_transfer, kind, eval_arms],
                           api_name="transfer")
        eval_btn.click(_guard(do_evaluate), [state, dataset, upload, task, eval_arms, scaling, grid, eval_limit],
                       [eval_md, eval_plot1, eval_plot2], api_name="evaluate")
        save_btn.click(_guard(do_save), [state, save_role, kind], files_out, api_name="save_vector")
        upload_in.upload(_guard(do_upload), [state, upload_in], [state, kind, eval_arms], api_name="upload_vector")
        steer_in = [state, prompt, target, kind, intensity, mode, positions, sliders["llm"], sliders["slm"],
                    *sampling_in]
        release_event = intensity.release(_guard(do_steer), steer_in, outs, api_name=False)
        # Typing a value then pressing Generate fires the slider's release first: the
        # click supersedes that run instead of generating twice.
        gen_event = gen_btn.click(_guard(do_steer), steer_in, outs, api_name="steer", cancels=[release_event])
        sweep_event = sweep_btn.click(_guard(do_sweep), [state, sweep_role, sweep_values, prompt, kind, mode,
                                                         sliders["llm"], sliders["slm"], *sampling_in],
                                      sweep_out, api_name="sweep")
        compare_event = compare_btn.click(_guard(do_compare), [state, prompt, intensity, mode, sliders["slm"],
                                                               *sampling_in], compare_out, api_name="compare")
        stop_btn.click(do_stop, state, None, cancels=[gen_event, release_event, sweep_event, compare_event],
                       api_name="stop")
        demo.load(lambda: [_slider_for(wb, r) for r in ROLES], None, [sliders["llm"], sliders["slm"]],
                  api_name=False)
    return demo
