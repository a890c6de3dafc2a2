"""The Transfer and Evaluate tabs' actions (``steer_ui.app.actions.transfer``, ``.evaluate``), gradio-free, on the real
pair qwen2.5-0.5b -> smollm2-135m: the Evaluate tab evaluates exactly the vectors the
session holds, each at its own layer."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from conftest import FIXTURES, real_model
from steer_ui.app.actions import concept as concept_actions
from steer_ui.app.actions import evaluate as evaluate_actions
from steer_ui.app.actions import transfer as transfer_actions
from steer_ui.app.pool import Pair
from steer_ui.app.state import SessionState
from steer_ui.concepts import contrast
from steer_ui.concepts.files import save_vector
from steer_ui.errors import SteerError
from steer_ui.evaluation import experiment

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def transferred():
    """A session that extracted happy-sad (pca, mean pooling: not the defaults) in both
    models and transferred it with ridge: (workbench, state, transfer markdown)."""
    wb = Pair()
    wb.models["llm"], wb.models["slm"] = real_model("qwen2.5-0.5b"), real_model("smollm2-135m")
    state = SessionState()
    concept_actions.extract_both(wb, state, contrast.from_preset("happy-sad", 8), "pca", "mean")
    text, fig, cka, kind = transfer_actions.transfer_concept(wb, state, "ridge", "depth", ["concept"], 64)
    assert kind == "transferred:ridge:happy-sad"
    return wb, state, text


def test_transfer_adds_a_vector_with_its_own_layer_and_a_verdict(transferred):
    wb, state, text = transferred
    v = state.extra["transferred:ridge:happy-sad"]
    assert v.model == "smollm2-135m" and v.provenance["transferred_from"] == "qwen2.5-0.5b"
    assert v.provenance["map"] == "ridge"
    assert v.provenance["source_layer"] == state.extractions["llm"].vector.default_layer
    assert 0 <= v.default_layer < wb.models["slm"].n_layers
    # the verdict's figures, recomputed here at the native vector's best layer
    native = state.extractions["slm"]
    j = native.vector.default_layer
    cos = float(torch.nn.functional.cosine_similarity(v.directions[j], native.vector.directions[j], dim=0))
    d = v.directions[j].numpy()
    auc = roc_auc_score([1] * len(native.pos) + [0] * len(native.neg),
                        np.r_[native.pos[:, j].numpy() @ d, native.neg[:, j].numpy() @ d])
    assert f"cosine with the native vector {cos:.2f} at layer {j}" in text, text
    assert f"| cos native | {round(cos, 4):.3f} |" in text and f"| auc transferred | {round(auc, 4):.3f} |" in text, text
    assert f"read at SLM layer {j} (from LLM layer" in text
    assert f"steers at SLM layer **{v.default_layer}**" in text
    # what the map saw and left out: happy-sad's whole family, never its prompts
    seen = v.provenance["map_data"]
    assert "Left out: happy-sad, optimistic-pessimistic, angry-calm" in text, text
    assert f"It saw {seen['concept_texts']} concept prompts of {len(seen['concept_presets'])} presets" in text
    assert "polite-rude" in seen["concept_presets"] and "angry-calm" not in seen["concept_presets"]
    assert "norm kept" not in text  # ridge reads the whole LLM space


def test_procrustes_transfer_reports_the_norm_its_pca_keeps(transferred):
    wb, state, _ = transferred
    text, _, _, kind = transfer_actions.transfer_concept(wb, state, "procrustes", "depth", ["concept"], 64)
    v = state.extra[kind]
    j = state.extractions["slm"].vector.default_layer
    kept = v.provenance["norm_kept"][j]
    assert 0 < kept < 1  # 128 PCA components of 896 dimensions keep part of the direction, not all
    assert f"| norm kept | {round(kept, 4):.3f} |" in text, text
    state.remove(kind)  # the module's session is shared: leave it as the other tests expect


def test_evaluate_steers_the_sessions_own_vectors_at_their_own_layers(transferred, tmp_path, monkeypatch):
    wb, state, _ = transferred
    slm = wb.models["slm"]
    # an uploaded vector too: the native one, saved and loaded back under another layer
    native = state.extractions["slm"].vector
    path = save_vector(replace(native, default_layer=native.default_layer - 3), tmp_path / "mine.safetensors")
    kind, message = concept_actions.upload_vector(wb, state, str(path))
    assert message.startswith(f"uploaded **{kind}**: 30 layers x 576, made for smollm2-135m")
    seen = []
    real_run = experiment.run
    monkeypatch.setattr(experiment, "run", lambda arms, *a, **k: seen.append(arms) or real_run(arms, *a, **k))
    kinds = ["native", "transferred:ridge:happy-sad", kind, "random control"]
    table, fig1, fig2 = evaluate_actions.evaluate(wb, state, "", str(FIXTURES / "ab_small.json"), "ab", kinds,
                                        "dev-sweep", "0, 0.5", 12)
    arms = {a.name: a for a in seen[0]}
    assert list(arms) == ["baseline", *kinds]
    for k in kinds[:-1]:  # the very vector objects the session holds, at their own layers
        assert arms[k].vector is state.vector("slm", k)
        assert arms[k].layer == state.vector("slm", k).default_layer
    assert arms["native"].vector.method == "pca" and arms["native"].vector.provenance["position"] == "mean"
    assert arms[kind].layer == native.default_layer - 3
    assert arms["transferred:ridge:happy-sad"].layer == state.extra["transferred:ridge:happy-sad"].default_layer
    for k in kinds[:-1]:
        assert f"| {k} | {arms[k].vector.name} | {arms[k].layer} |" in table, table
    assert fig1 is not None and fig2 is not None and slm.name == "smollm2-135m"


def test_evaluate_refuses_what_the_session_does_not_hold(transferred):
    wb, state, _ = transferred
    with pytest.raises(SteerError, match="holds no 'transferred:procrustes' vector"):
        evaluate_actions.evaluate(wb, state, "", str(FIXTURES / "ab_small.json"), "ab", ["transferred:procrustes"],
                        "dev-sweep", "0, 0.5", 12)
    with pytest.raises(SteerError, match="Pick at least one vector"):
        evaluate_actions.evaluate(wb, state, "", str(FIXTURES / "ab_small.json"), "ab", [], "dev-sweep", "0", 12)
