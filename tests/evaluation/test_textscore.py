"""steer_ui.evaluation.textscore: judge-free concept scores of generated text."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from steer_ui.concepts.contrast import load_preset, preset_names
from steer_ui.evaluation.textscore import classifier, scorer_for


def test_happy_sad_is_vader():
    s = scorer_for("happy-sad")
    assert s.kind == "sentiment" and s.name == "happy-sad"
    happy, sad, neutral = s.score(["I love this wonderful day", "This is a terrible, sad day",
                                   "The table is in the kitchen."])
    assert happy > 0.75 and sad < 0.25
    assert happy > neutral > sad
    assert neutral == pytest.approx(0.5)


def test_formal_casual_classifier():
    p = load_preset("formal-casual")
    assert "formal" in p["positive_persona"] and "casual" in p["negative_persona"]
    s = scorer_for("formal-casual")
    assert s.kind == "classifier"
    formal, casual = s.score([
        "Dear Sir or Madam, I am writing to inform you that the meeting has been rescheduled to Thursday.",
        "hey dude, meeting's moved to thursday lol, see ya",
    ])
    assert formal > 0.5 > casual


def _heldout_auc(preset: str, folds: int = 4) -> float:
    """AUC of the preset's classifier on examples it was not fitted on (k-fold)."""
    p = load_preset(preset)
    pos, neg = p["positive_examples"], p["negative_examples"]
    scores, labels = [], []
    for k in range(folds):
        def train(xs):
            return [x for i, x in enumerate(xs) if i % folds != k]

        def test(xs):
            return [x for i, x in enumerate(xs) if i % folds == k]

        clf = classifier(train(pos), train(neg))
        scores += list(clf.predict_proba(test(pos) + test(neg))[:, 1])
        labels += [1] * len(test(pos)) + [0] * len(test(neg))
    return float(roc_auc_score(labels, scores))


@pytest.mark.parametrize("preset", [p for p in preset_names() if load_preset(p).get("scorer") != "sentiment"])
def test_classifier_separates_held_out_examples(preset):
    assert _heldout_auc(preset) > 0.8, preset


@pytest.mark.parametrize("preset", preset_names())
def test_every_preset_scorer_builds(preset):
    s = scorer_for(preset)
    assert s.kind == ("sentiment" if load_preset(preset).get("scorer") == "sentiment" else "classifier")
    out = s.score(["Hello there.", "The report is attached."])
    assert out.shape == (2,)
    assert np.all((out >= 0) & (out <= 1))


@pytest.mark.parametrize("preset", [p for p in preset_names() if load_preset(p).get("scorer") == "sentiment"])
def test_sentiment_presets_score_their_examples_the_right_way(preset):
    """VADER is not fitted on our examples, so scoring them is a fair check."""
    p, s = load_preset(preset), scorer_for(preset)
    assert s.score(p["positive_examples"]).mean() > s.score(p["negative_examples"]).mean() + 0.2
