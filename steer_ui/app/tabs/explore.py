"""The Explore tab: token heatmap, logit lens, and Calibrate (which sets the Steer tab)."""

from __future__ import annotations

from types import SimpleNamespace as Parts

import gradio as gr

from ...config import ASSETS
from ...evaluation.calibration import DEFAULT_INTENSITIES
from ..actions import explore as actions
from ..pool import ModelPool
from .common import guard


def layout() -> Parts:
    x = Parts()
    gr.Markdown("Where the concept lives in a text, where it reaches the output, and where it steers best. "
                "Layers are the ones chosen on the Concept tab's sliders.")
    with gr.Accordion("Token heatmap: where in a text the model holds the concept", open=True):
        with gr.Row():
            x.source = gr.Dropdown(list(actions.SOURCES), value="typed", label="Text from", scale=1)
            x.text = gr.Textbox(value="I finally got the job! We celebrated all evening, but then the car broke "
                                "down and the night ended in tears.", label="Text", lines=3, scale=4,
                                elem_id="explore-text")
        x.draw = gr.Button("Draw heatmap", variant="primary")
        x.status = gr.Markdown(elem_id="explore-status")
        with gr.Row():
            x.maps = [gr.HTML(elem_id="heatmap-llm"), gr.HTML(elem_id="heatmap-slm")]
    with gr.Accordion("Logit lens: the tokens the direction promotes and suppresses, layer by layer", open=False):
        with gr.Row():
            x.lens_role = gr.Radio(["SLM", "LLM"], value="SLM", label="Model")
            x.lens = gr.Button("Read the lens")
        x.lens_status = gr.Markdown(elem_id="lens-status")
        x.lens_plot = gr.Plot(label="Readable vs reaching the output")
        x.lens_table = gr.Dataframe(headers=["layer", "promotes", "suppresses"], wrap=True,
                                    column_widths=["10%", "45%", "45%"], label="Top 10 tokens each way")
    with gr.Accordion("Calibrate: which layer and what strength", open=False):
        gr.Markdown("Tries every layer x intensity on a few neutral prompts, scores each cell for the concept "
                    "and for damage (per-token KL from the unsteered model), and sets the Steer tab to the best "
                    "unbroken cell.")
        with gr.Row():
            x.cal_role = gr.Radio(["SLM", "LLM"], value="SLM", label="Model")
            x.cal_layers = gr.Textbox(value="", label="Layers", info="empty: 5 from 10% to 90% depth; or 3-27:6, 8,12",
                                      elem_id="calibrate-layers")
            x.cal_values = gr.Textbox(value=", ".join(f"{v:g}" for v in DEFAULT_INTENSITIES), label="Intensities",
                                      elem_id="calibrate-values")
            x.cal_guard = gr.Number(value=1.0, label="Damage guard (KL nat/token)")
        prompts = (ASSETS / "neutral_prompts.txt").read_text(encoding="utf-8").splitlines()[:5]
        x.cal_prompts = gr.Textbox(value="\n".join(prompts), lines=5, label="Neutral prompts (one per line)",
                                   elem_id="calibrate-prompts")
        x.calibrate = gr.Button("Calibrate", variant="primary")
        x.cal_reason = gr.Markdown(elem_id="calibrate-reason")
        x.cal_plot = gr.Plot(label="Efficacy grid (x: broken; star: chosen)")
    return x


def wire(wb: ModelPool, ui: Parts) -> None:
    x, c, s, state = ui.explore, ui.concept, ui.steer, ui.state
    view = [c.sliders["llm"], c.sliders["slm"]]

    def do_fill(st, source, typed, *panes):
        return actions.fill_text(st, source, list(panes), typed)

    def do_draw(st, text, llm_layer, slm_layer):
        return actions.heatmaps(wb.pair(st.id), st, text, {"llm": llm_layer, "slm": slm_layer})

    def do_lens(st, role, llm_layer, slm_layer):
        r = role.lower()
        return actions.lens_view(wb.pair(st.id), st, r, llm_layer if r == "llm" else slm_layer)

    def do_calibrate(st, role, kind, prompts, layers, values, guard_v, progress=gr.Progress()):
        fig, reason, intensity, layer = actions.calibrate(
            wb.pair(st.id), st, role.lower(), kind, prompts, layers, values, guard_v,
            progress=lambda f, m: progress(f, desc=m))
        if layer is None:
            return fig, reason, gr.update(), gr.update(), gr.update()
        return (fig, reason + f" **The Steer tab now steers the {role} at layer {layer}, intensity {intensity:g}.**",
                intensity, str(layer), role)

    x.source.change(guard(do_fill), [state, x.source, x.text, *s.panes], x.text, api_visibility="private")
    x.draw.click(guard(do_draw), [state, x.text, *view], [*x.maps, x.status], api_name="heatmap",
                 show_progress_on=[x.status])
    x.lens.click(guard(do_lens), [state, x.lens_role, *view], [x.lens_plot, x.lens_table, x.lens_status],
                 api_name="lens", show_progress_on=[x.lens_status])
    x.calibrate.click(guard(do_calibrate), [state, x.cal_role, s.kind, x.cal_prompts, x.cal_layers, x.cal_values,
                                            x.cal_guard],
                      [x.cal_plot, x.cal_reason, s.intensity, s.layers, s.target], api_name="calibrate",
                      show_progress_on=[x.cal_reason])
