"""The Evaluate tab: the session's vectors as arms on a dataset."""

from __future__ import annotations

from types import SimpleNamespace as Parts

import gradio as gr

from ..actions import evaluate as actions
from ..pool import ModelPool
from .common import guard


def layout() -> Parts:
    e = Parts()
    gr.Markdown("Arms on a dataset: baseline, and the SLM vectors this session holds, exactly as made (native "
                "as extracted, each transferred vector with its own map and at its own layer, uploaded, random "
                "control). Each arm's intensity is chosen on the dev half and reported on the test half with "
                "95% bootstrap CIs.")
    with gr.Row():
        e.dataset = gr.Dropdown(list(actions.TASK_FILES), value="sentiment (ours, A/B)", label="Dataset")
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
    e.files = gr.File(label="Download: the results (JSON) and both plots (HTML, PNG when it can be rendered)",
                      file_count="multiple", interactive=False, elem_id="evaluate-files")
    return e


def wire(wb: ModelPool, ui: Parts) -> None:
    e = ui.evaluate

    def do_evaluate(st, dataset_v, upload_v, task_v, arms_v, scaling_v, grid_v, limit_v, progress=gr.Progress()):
        return actions.evaluate_for_download(wb.pair(st.id), st, dataset_v, upload_v, task_v, list(arms_v or []),
                                             scaling_v, grid_v, int(limit_v or 60),
                                             progress=lambda f, m: progress(f, desc=m))

    e.run.click(guard(do_evaluate), [ui.state, e.dataset, e.upload, e.task, e.arms, e.scaling, e.grid, e.limit],
                [e.table, e.plot1, e.plot2, e.files], api_name="evaluate", show_progress_on=[e.table])
