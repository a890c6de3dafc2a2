"""Gradio layout and event wiring only: the work is in ``app.actions`` and the core.

``build`` lays out the six tabs (``tabs.<tab>.layout``), then wires their events
(``tabs.<tab>.wire``): events of one tab write to lists in others, so
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

from types import SimpleNamespace as Parts

import gradio as gr

from .pool import ROLES, ModelPool
from .published import VectorStore
from .state import SessionState
from .tabs import concept, evaluate, explore, models, steer, transfer
from .tabs.common import PICKERS, slider_for


def build(wb: ModelPool, store: VectorStore | None = None) -> gr.Blocks:
    """The whole app: Models, Concept, Explore, Transfer, Steer and Evaluate tabs over one shared
    ``ModelPool``; each browser session's concepts live in its own ``SessionState``."""
    with gr.Blocks(title="steer-ui") as demo:
        gr.Markdown("# steer-ui\nExtract a concept from contrast prompts, see it, carry it from the LLM into "
                    "the SLM, steer with it.")
        # a closed browser tab's session stops holding models in the pool
        ui = Parts(state=gr.State(lambda: SessionState(), delete_callback=lambda st: wb.forget(st.id)),
                   store=store if store is not None else VectorStore())
        with gr.Tab("Models"):
            ui.models = models.layout(wb)
        with gr.Tab("Concept"):
            ui.concept = concept.layout(wb)
        with gr.Tab("Explore"):
            ui.explore = explore.layout()
        with gr.Tab("Transfer"):
            ui.transfer = transfer.layout()
        with gr.Tab("Steer"):
            ui.steer = steer.layout(wb)
        with gr.Tab("Evaluate"):
            ui.evaluate = evaluate.layout()
        ui.lists = [ui.steer.kind, ui.evaluate.arms, ui.concept.download, ui.concept.remove,
                    *ui.steer.compose[::3], ui.concept.arith_a, ui.concept.arith_b]  # the pickers last
        assert len(ui.lists) == 4 + PICKERS, "common.lists must make one update per list"
        for tab in (models, concept, explore, transfer, steer, evaluate):
            tab.wire(wb, ui)
        demo.load(lambda: [slider_for(wb, r) for r in ROLES], None,
                  [ui.concept.sliders[r] for r in ROLES], api_visibility="private")
    return demo
