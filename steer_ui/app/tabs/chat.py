"""The Steer tab's chat: the SLM unsteered beside steered over several turns, steered by
the tab's settings (vector, intensity, layers, Compose rows, system prompt)."""

from __future__ import annotations

from types import SimpleNamespace as Parts

import gradio as gr

from ..actions import chat as actions
from ..actions.steer import settings
from ..pool import ModelPool
from .common import guard, to_sampling


def layout() -> Parts:
    ch = Parts()
    with gr.Accordion("Chat (multi-turn, steered beside unsteered)", open=False):
        gr.Markdown("The SLM, unsteered and steered by the settings above; each side keeps its own history, "
                    "so the steered side answers after its own steered replies. Always through the chat template.")
        with gr.Row():
            ch.plain = gr.Chatbot(label="SLM unsteered", height=300, elem_id="chat-plain")
            ch.steered = gr.Chatbot(label="SLM steered", height=300, elem_id="chat-steered")
        with gr.Row():
            ch.message = gr.Textbox(label="Message", placeholder="Say something, then Send", scale=4,
                                    elem_id="chat-message")
            ch.send = gr.Button("Send", variant="primary", elem_id="chat-send")
            ch.clear = gr.Button("Clear", elem_id="chat-clear")
        ch.status = gr.Markdown(elem_id="chat-status")
    return ch


def wire(wb: ModelPool, ui: Parts) -> list:
    """Send (button or Enter) and Clear; returns the events the Stop button cancels."""
    s, ch, state = ui.steer, ui.steer.chat, ui.state
    chat_in = [state, ch.message, ch.plain, ch.steered, s.kind, s.intensity, s.mode, s.positions, s.layers,
               ui.concept.sliders["slm"], s.system, *s.sampling, *s.compose]

    def do_chat(st, message_v, plain_v, steered_v, kind_v, x, mode_v, pos_v, layers_v, slm_layer, system_v,
                max_new_v, temperature_v, top_p_v, seed_v, kind2_v, x2, layers2_v, kind3_v, x3, layers3_v):
        compose_v = [kind2_v, x2, layers2_v, kind3_v, x3, layers3_v]
        layers, extra = settings(st, layers_v, {"slm": slm_layer}, mode_v, compose_v)
        how = actions.ChatSteer(kind_v, x, layers["slm"], mode_v, pos_v, extra)
        sampling = to_sampling(max_new_v, temperature_v, top_p_v, seed_v)
        for plain, steered, status in actions.chat_turn(wb.pair(st.id), st, message_v, plain_v, steered_v, how,
                                                        system_v, sampling, st.new_stop("chat")):
            yield plain, steered, "", status

    outs = [ch.plain, ch.steered, ch.message, ch.status]
    events = [trigger(guard(do_chat), chat_in, outs, api_visibility="private", show_progress_on=[ch.status])
              for trigger in (ch.send.click, ch.message.submit)]
    ch.clear.click(lambda: ([], [], "cleared: a new conversation"), None, [ch.plain, ch.steered, ch.status],
                   cancels=events, api_visibility="private")
    return events
