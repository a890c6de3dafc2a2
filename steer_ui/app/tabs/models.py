"""The Models tab: this session's two models side by side, loading either one (for this
session only), what the shared pool holds and who uses it, a plain chat with each, and
saving or restoring the whole session (vectors and Steer settings) as one file."""

from __future__ import annotations

from types import SimpleNamespace as Parts

import gradio as gr

from ...models import zoo
from ..actions import models as actions
from ..pool import ROLES, ModelPool
from .common import facts_table, guard, lists, slider_for, to_sampling

# The Steer tab's settings a session file keeps, in the order of ``_steer_settings``.
SETTINGS = ("prompt", "intensity", "mode", "positions", "max_new_tokens", "temperature", "top_p", "seed",
            "target", "layers", "system", "raw")

POOL_HEADERS = ["model", "family", "memory", "dtype", "sessions using it", "start pair"]


def layout(wb: ModelPool) -> Parts:
    m = Parts(facts=gr.Dataframe(value=facts_table(wb), headers=["", "LLM", "SLM"], interactive=False,
                                 label="This session's models", elem_id="facts"),
              pickers={}, loads={}, status={}, chats={}, engines={})
    with gr.Row():
        for role in ROLES:
            with gr.Column():
                current = wb.models[role].name if role in wb.models else None
                m.pickers[role] = gr.Dropdown(list(zoo.BUNDLED), value=current, allow_custom_value=True,
                                              label=f"{role.upper()}: bundled name, Hub id, folder or .gguf",
                                              elem_id=f"picker-{role}")
                m.loads[role] = gr.Button(f"Load {role.upper()}")
                m.engines[role] = gr.Radio(["llamacpp", "torch"], value=None, label=f"{role.upper()} generates "
                                           "with (every session using this model)", elem_id=f"engine-{role}")
                m.status[role] = gr.Markdown(elem_id=f"load-status-{role}")
                m.chats[role] = (gr.Chatbot(label=f"{role.upper()} chat (unsteered)", height=260),
                                 gr.Textbox(placeholder="Say something and press Enter", show_label=False))
    with gr.Accordion("Shared model pool: what is loaded on this server, and by how many sessions", open=False):
        m.pool = gr.Dataframe(value=wb.table(), headers=POOL_HEADERS, interactive=False, elem_id="pool")
        m.refresh = gr.Button("Refresh", size="sm")
    with gr.Accordion("Session: save / restore (every vector, and the Steer tab's settings, as one file)",
                      open=False):
        with gr.Row():
            m.save_session = gr.Button("Save session")
            m.session_download = gr.File(label="Session file", interactive=False, elem_id="session-download")
            m.session_upload = gr.File(label="Restore a session file (.zip)", file_types=[".zip"], type="filepath",
                                       elem_id="session-upload")
        m.session_status = gr.Markdown(elem_id="session-status")
    return m


def wire(wb: ModelPool, ui: Parts) -> None:
    m, sampling_in = ui.models, ui.steer.sampling
    for role in ROLES:
        def do_load(st, source, r=role, progress=gr.Progress()):
            lm = wb.load_for(st.id, r, source or "", progress=lambda f, msg: progress(f, desc=msg))
            pair = wb.pair(st.id)
            return (facts_table(pair), slider_for(pair, r), wb.table(),
                    f"{r.upper()}: **{lm.name}** loaded for this session ({lm.load_seconds:.1f} s); "
                    "other sessions keep their own")

        event = m.loads[role].click(guard(do_load), [ui.state, m.pickers[role]],
                                    [m.facts, ui.concept.sliders[role], m.pool, m.status[role]],
                                    api_name=f"load_{role}", show_progress_on=[m.status[role]])
        # a failed load keeps the working model: the picker shows that one again
        event.failure(lambda st, r=role: gr.update(value=_name(wb, st, r)), ui.state, m.pickers[role],
                      api_visibility="private", show_progress="hidden")

        def do_chat(st, history, message, max_new_v, temperature_v, top_p_v, seed_v, r=role):
            history = list(history or []) + [{"role": "user", "content": message},
                                             {"role": "assistant", "content": ""}]
            stop = st.new_stop(f"chat-{r}")
            for text in actions.chat_reply(wb.pair(st.id), r, history[:-1],
                                           to_sampling(max_new_v, temperature_v, top_p_v, seed_v), stop):
                history[-1]["content"] = text
                yield history, ""

        def do_engine(st, choice, r=role):
            text = actions.set_engine(wb.pair(st.id), r, choice)
            return facts_table(wb.pair(st.id)), text

        m.engines[role].input(guard(do_engine), [ui.state, m.engines[role]], [m.facts, m.status[role]],
                              api_name=f"engine_{role}", show_progress_on=[m.status[role]])

        bot, box = m.chats[role]
        box.submit(guard(do_chat), [ui.state, bot, box, *sampling_in], [bot, box], api_name=f"chat_{role}")
    m.refresh.click(lambda st: (facts_table(wb.pair(st.id)), wb.table()), ui.state, [m.facts, m.pool],
                    api_visibility="private", show_progress="hidden")
    _wire_session(wb, ui)


def _steer_settings(ui: Parts) -> list:
    """The Steer tab's components a session file keeps, in the order of ``SETTINGS``."""
    s = ui.steer
    return [s.prompt, s.intensity, s.mode, s.positions, *s.sampling, s.target, s.layers, s.system, s.raw]


def _wire_session(wb: ModelPool, ui: Parts) -> None:
    m, settings_in = ui.models, _steer_settings(ui)

    def do_save(st, *values):
        path, text = actions.save_session(wb.pair(st.id), st, dict(zip(SETTINGS, values)))
        return path, text

    def do_restore(st, path, progress=gr.Progress()):
        text, settings = actions.restore_session(wb.pair(st.id), st, path, lambda f, msg: progress(f, desc=msg))
        return (st, text, *lists(st), *[_setting_update(c, settings.get(k)) for k, c in zip(SETTINGS, settings_in)])

    m.save_session.click(guard(do_save), [ui.state, *settings_in], [m.session_download, m.session_status],
                         api_name="save_session", show_progress_on=[m.session_status])
    m.session_upload.upload(guard(do_restore), [ui.state, m.session_upload],
                            [ui.state, m.session_status, *ui.lists, *settings_in], api_name="restore_session",
                            show_progress_on=[m.session_status])


def _setting_update(component, value):
    """Put a saved value back only where the component accepts it (a hand-edited file
    must not break the Steer tab): a known radio choice, a number within a slider."""
    if value is None:
        return gr.update()
    if isinstance(component, gr.Checkbox):
        return gr.update(value=value) if isinstance(value, bool) else gr.update()
    if isinstance(component, gr.Radio):
        return gr.update(value=value) if value in [c[1] for c in component.choices] else gr.update()
    if isinstance(component, (gr.Slider, gr.Number)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:  # NaN
            return gr.update()
        if isinstance(component, gr.Slider):
            value = min(max(value, component.minimum), component.maximum)
        return gr.update(value=value)
    return gr.update(value=str(value))


def _name(wb: ModelPool, st, role: str) -> str | None:
    pair = wb.pair(st.id)
    return pair.models[role].name if role in pair.models else None
