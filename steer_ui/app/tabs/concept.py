"""The Concept tab: contrast prompts in, a concept extracted in both models, its PCA and separability views, vector files."""

from __future__ import annotations

from types import SimpleNamespace as Parts

import gradio as gr

from ...concepts import contrast
from ...models import zoo
from ..actions import concept as actions
from ..pool import ROLES, ModelPool
from ..state import SessionState
from .common import guard, lists, slider_for


def layout(wb: ModelPool) -> Parts:
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
                                                label=f"{role.upper()} layer (view; steer, unless the Steer tab names layers)", elem_id=f"layer-{role}")
                    with gr.Column(scale=0, min_width=110):
                        c.bests[role] = gr.Button("↺ best layer", size="sm")
                c.pcas[role] = gr.Plot(label=f"{role.upper()}: PCA of the contrast prompts", elem_id=f"pca-{role}")
    c.profile = gr.Plot(label="Separability: how well each layer tells the two sides apart", elem_id="profile")
    with gr.Accordion("Vector files: download (safetensors + llama.cpp GGUF), upload, remove", open=False):
        with gr.Row():
            c.download = gr.Dropdown([], label="Vector to download", elem_id="concept-download")
            c.save = gr.Button("Prepare downloads")
            c.files = gr.File(label="Vector files", file_count="multiple")
        with gr.Row():
            c.upload = gr.File(label="Upload a vector for the SLM (.safetensors or .gguf)",
                               file_types=[".safetensors", ".gguf"], type="filepath")
            c.remove = gr.Dropdown([], label="A vector you transferred or uploaded")
            c.remove_btn = gr.Button("Remove it from this session")
        with gr.Row():
            c.publish_name = gr.Textbox(value="", label="Publish the vector to download as (a name API callers use)",
                                        placeholder="happy-sad", scale=3)
            c.publish = gr.Button("Publish to the API", scale=1)
        c.files_status = gr.Markdown(elem_id="files-status")
    with gr.Accordion("Vector arithmetic: a·A + b·B as a new SLM vector", open=False):
        with gr.Row():
            c.arith_a = gr.Dropdown([], value=None, allow_custom_value=True, label="A", elem_id="arith-a")
            c.arith_wa = gr.Number(value=1.0, label="a", elem_id="arith-wa")
            c.arith_b = gr.Dropdown([], value=None, allow_custom_value=True, label="B", elem_id="arith-b")
            c.arith_wb = gr.Number(value=-1.0, label="b", elem_id="arith-wb")
            c.arith_name = gr.Textbox(value="", label="Name", placeholder="e.g. joy-minus-calm", elem_id="arith-name")
            c.arith = gr.Button("Make it", elem_id="arith-make")
        c.arith_status = gr.Markdown(elem_id="arith-status")
    return c


def views(st: SessionState, llm_layer, slm_layer) -> tuple:
    """Both PCA plots and the separability profile at the sliders' layers."""
    layers = {"llm": llm_layer, "slm": slm_layer}
    return (*[actions.pca_figure(st, r, layers[r]) for r in ROLES], actions.profile_figure(st, layers))


def wire(wb: ModelPool, ui: Parts) -> None:
    c, state = ui.concept, ui.state
    layer_in = [state, c.sliders["llm"], c.sliders["slm"]]
    views_out = [c.pcas["llm"], c.pcas["slm"], c.profile]
    c.source.change(lambda s: (gr.update(visible=s == "Preset"), gr.update(visible=s == "Two lists"),
                               gr.update(visible=s == "File")), c.source, [c.preset, c.lists_row, c.ab_file],
                    api_visibility="private", show_progress="hidden")

    def do_extract(st, src, preset_v, limit_v, method_v, position_v, pos_v, neg_v, ab_v, name_v, kind_v,
                   progress=gr.Progress()):
        cs = actions.contrast_from_inputs(src, preset_v, pos_v, neg_v, ab_v, int(limit_v or 0) or None, name_v)
        text = actions.extract_both(wb.pair(st.id), st, cs, method_v, position_v, progress=lambda f, m: progress(f, desc=m))
        best = {r: st.extractions[r].vector.default_layer for r in st.extractions}
        return (st, text, *[slider_for(wb.pair(st.id), r, best.get(r)) for r in ROLES],
                *views(st, best.get("llm"), best.get("slm")), *lists(st, kind_v))

    def do_rescore(st, method_v, llm_layer, slm_layer):
        if not st.extractions:
            return st, gr.update(), gr.update(), gr.update(), gr.update()
        return (st, actions.rescore(st, method_v), *views(st, llm_layer, slm_layer))

    def do_save(st, choice, request: gr.Request):
        folder = zoo.cache_root() / "downloads" / str(request.session_hash if request else "cli")
        folder.mkdir(parents=True, exist_ok=True)
        paths = actions.save_vectors(st, choice, folder)
        return paths, "prepared: " + ", ".join(p.rsplit("/", 1)[-1] for p in paths)

    def do_upload(st, path, kind_v):
        added, message = actions.upload_vector(wb.pair(st.id), st, path)
        return (st, message, *lists(st, added))

    def do_remove(st, kind_v, steer_v):
        st.remove(kind_v)
        return (st, f"removed **{kind_v}** from this session", *lists(st, steer_v))

    c.extract.click(guard(do_extract), [state, c.source, c.preset, c.limit, c.method, c.position, c.pos_text,
                                         c.neg_text, c.ab_file, c.name, ui.steer.kind],
                    [state, c.summary, c.sliders["llm"], c.sliders["slm"], *views_out, *ui.lists],
                    api_name="extract", show_progress_on=[c.summary])
    c.method.change(guard(do_rescore), [state, c.method, c.sliders["llm"], c.sliders["slm"]],
                    [state, c.summary, *views_out], api_name="rescore", show_progress_on=[c.summary])
    for role in ROLES:
        # .input: dragging, or typing a number, redraws at once (no wait for the box to lose focus)
        c.sliders[role].input(guard(views), layer_in, views_out, api_name=f"view_{role}",
                              show_progress="hidden")
        c.bests[role].click(lambda st, r=role: gr.update(value=st.extractions[r].vector.default_layer)
                            if r in st.extractions else gr.update(), state, c.sliders[role], api_visibility="private",
                            show_progress="hidden").then(guard(views), layer_in, views_out, api_visibility="private",
                                                         show_progress="hidden")
    c.save.click(guard(do_save), [state, c.download], [c.files, c.files_status], api_name="save_vector",
                 show_progress_on=[c.files_status])
    c.upload.upload(guard(do_upload), [state, c.upload, ui.steer.kind], [state, c.files_status, *ui.lists],
                    api_name="upload_vector", show_progress_on=[c.files_status])
    def do_publish(st, choice, name_v):
        item = actions.publish_vector(st, ui.store, choice, name_v)
        v = item.vector
        return (f"published **{item.name}** ({v.name}, {v.method}) for **{v.model}**: steer with it through "
                f"`/v1/chat/completions` and `extra_body={{\"steering\": [{{\"vector\": \"{item.name}\", "
                f"\"intensity\": 0.4}}]}}`")

    c.publish.click(guard(do_publish), [state, c.download, c.publish_name], c.files_status,
                    api_name="publish_vector", show_progress_on=[c.files_status])
    def do_arith(st, a_v, wa_v, b_v, wb_v, name_v, kind_v):
        _, message = actions.combine_vectors(st, a_v, wa_v, b_v, wb_v, name_v)
        return (st, message, *lists(st, kind_v))

    c.arith.click(guard(do_arith), [state, c.arith_a, c.arith_wa, c.arith_b, c.arith_wb, c.arith_name, ui.steer.kind],
                  [state, c.arith_status, *ui.lists], api_name="vector_arithmetic", show_progress_on=[c.arith_status])
    c.remove_btn.click(guard(do_remove), [state, c.remove, ui.steer.kind], [state, c.files_status, *ui.lists],
                       api_name="remove_vector", show_progress_on=[c.files_status])
