"""The Steer tab: unsteered beside steered text, the intensity slider, the layers to steer
at, a system prompt or raw completion, up to three concepts composed, Compare, Sweep and
a steered multi-turn chat (``tabs/chat.py``)."""

from __future__ import annotations

from types import SimpleNamespace as Parts

import gradio as gr

from ..actions import steer as actions
from ..pool import ROLES, ModelPool
from . import chat
from .common import guard, to_sampling


def layout(wb: ModelPool) -> Parts:
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
        s.layers = gr.Textbox(value="", label="Steer at layer(s)", elem_id="steer-layers",
                              placeholder="15, 10-14 or 8,12; empty = the Concept tab's layer")
    with gr.Row():
        s.system = gr.Textbox(value="", label="System prompt (empty = none)", scale=4, elem_id="steer-system")
        s.raw = gr.Checkbox(value=False, label="Raw completion (no chat template)", elem_id="steer-raw")
    with gr.Accordion("Compose: up to three concepts", open=False):
        gr.Markdown("Each vector picked here is added to the SLM's steered pane on top of the one above "
                    "(empty layers: the same layers as that one). Intensity 0 turns a row off.")
        s.compose = []  # (vector, intensity, layers) per row, flat: the handlers' argument order
        for n in (2, 3):
            with gr.Row():
                s.compose += [gr.Dropdown([], value=None, allow_custom_value=True, label=f"Vector {n}", scale=2,
                                          elem_id=f"compose-kind-{n}"),
                              gr.Slider(-2, 2, value=0.2, step=0.05, label=f"Intensity {n}", scale=2,
                                        elem_id=f"compose-x-{n}"),
                              gr.Textbox(value="", label=f"Layer(s) {n}", placeholder="empty = as above",
                                         elem_id=f"compose-layers-{n}")]
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
    s.chat = chat.layout()
    return s



def wire(wb: ModelPool, ui: Parts) -> None:
    s, c, state = ui.steer, ui.concept, ui.state
    # new inputs go last, after the sampling, so API callers' keyword arguments keep working
    more = [s.system, s.raw, s.layers]
    steer_in = [state, s.prompt, s.target, s.kind, s.intensity, s.mode, s.positions, c.sliders["llm"],
                c.sliders["slm"], *s.sampling, *more, *s.compose]

    def do_steer(st, prompt_v, target_v, kind_v, x, mode_v, pos_v, llm_layer, slm_layer,
                 max_new_v, temperature_v, top_p_v, seed_v, system_v="", raw_v=False, layers_v="",
                 kind2_v=None, x2=0.0, layers2_v="", kind3_v=None, x3=0.0, layers3_v=""):
        roles = {"SLM": ["slm"], "LLM": ["llm"], "Both": ["llm", "slm"]}[target_v]
        compose_v = [kind2_v, x2, layers2_v, kind3_v, x3, layers3_v]
        layers, extra = actions.settings(st, layers_v, {"llm": llm_layer, "slm": slm_layer}, mode_v, compose_v)
        sampling = to_sampling(max_new_v, temperature_v, top_p_v, seed_v)
        for texts, status in actions.steer_texts(wb.pair(st.id), st, roles, prompt_v, x, layers, kind_v, mode_v, pos_v,
                                                 sampling, st.new_stop("steer"),
                                                 actions.PromptStyle(system_v, raw_v), extra):
            yield (*texts, status)

    def do_sweep(st, role_v, values, prompt_v, kind_v, mode_v, llm_layer, slm_layer,
                 max_new_v, temperature_v, top_p_v, seed_v, system_v="", raw_v=False, layers_v=""):
        role = role_v.lower()
        layers = actions.steer_layers(layers_v, {"llm": llm_layer, "slm": slm_layer})
        sampling = to_sampling(max_new_v, temperature_v, top_p_v, seed_v)
        yield from actions.sweep_texts(wb.pair(st.id), st, role, prompt_v, actions.parse_intensities(values),
                                       layers[role], kind_v, mode_v, sampling, st.new_stop(f"sweep-{role}"),
                                       actions.PromptStyle(system_v, raw_v))

    def do_compare(st, prompt_v, x, mode_v, slm_layer, max_new_v, temperature_v, top_p_v, seed_v,
                   system_v="", raw_v=False, layers_v=""):
        layers = actions.steer_layers(layers_v, {"slm": slm_layer})
        sampling = to_sampling(max_new_v, temperature_v, top_p_v, seed_v)
        yield from actions.compare_vectors(wb.pair(st.id), st, prompt_v, x, layers["slm"], mode_v, sampling,
                                           st.new_stop("compare"), actions.PromptStyle(system_v, raw_v))

    outs = [*s.panes, s.status]
    release = s.intensity.release(guard(do_steer), steer_in, outs, api_visibility="private", show_progress_on=[s.status])
    # Typing a value then pressing Generate fires the slider's release first: the click
    # supersedes that run instead of generating twice.
    generate = s.generate.click(guard(do_steer), steer_in, outs, api_name="steer", cancels=[release],
                                show_progress_on=[s.status])
    sweep = s.sweep.click(guard(do_sweep), [state, s.sweep_role, s.sweep_values, s.prompt, s.kind, s.mode,
                                             c.sliders["llm"], c.sliders["slm"], *s.sampling, *more],
                          [s.sweep_out, s.sweep_status], api_name="sweep", show_progress_on=[s.sweep_status])
    compare = s.compare.click(guard(do_compare), [state, s.prompt, s.intensity, s.mode, c.sliders["slm"],
                                                   *s.sampling, *more], [s.compare_out, s.compare_status],
                              api_name="compare", show_progress_on=[s.compare_status])
    chats = chat.wire(wb, ui)
    s.stop.click(lambda st: st.stop_all(), state, None, cancels=[generate, release, sweep, compare, *chats],
                 api_name="stop")
