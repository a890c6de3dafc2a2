"""The Transfer tab: carry the LLM's concept into the SLM and read the verdict."""

from __future__ import annotations

from types import SimpleNamespace as Parts

import gradio as gr

from ..actions import concept as concept_actions
from ..actions import transfer as actions
from ...transfer import maps
from ..pool import ModelPool
from .common import guard, lists


def layout() -> Parts:
    t = Parts()
    gr.Markdown("Carry the LLM's concept (extracted in the Concept tab) into the SLM. The verdict compares it "
                "with the SLM's own (native) vector and with random vectors sent through the same map: a good "
                "fit (R²) alone is not evidence that a concept arrived.")
    with gr.Row():
        t.map = gr.Dropdown(list(maps.MAPS), value="ridge", label="Map",
                            info="ridge regression, Procrustes rotation, or anchor (relative) coordinates")
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


def wire(wb: ModelPool, ui: Parts) -> None:
    t, c = ui.transfer, ui.concept
    t.matching.change(lambda m: gr.update(visible=m == "fit"), t.matching, t.cka, api_visibility="private",
                      show_progress="hidden")

    def do_transfer(st, method_v, matching_v, sources_v, n_v, slm_layer, kind_v, progress=gr.Progress()):
        text, fig, cka, added = actions.transfer_concept(wb.pair(st.id), st, method_v, matching_v, list(sources_v or []),
                                                        int(n_v), progress=lambda f, m: progress(f, desc=m))
        return (st, text, fig, gr.update(value=cka, visible=cka is not None),
                concept_actions.pca_figure(st, "slm", int(slm_layer)), *lists(st, added))

    t.run.click(guard(do_transfer), [ui.state, t.map, t.matching, t.sources, t.n_neutral, c.sliders["slm"],
                                      ui.steer.kind],
                [ui.state, t.report, t.plot, t.cka, t.pca, *ui.lists], api_name="transfer",
                show_progress_on=[t.report])
