"""steer_ui.textscore: judge-free concept scores of generated text."""

from __future__ import annotations

import numpy as np
import pytest

from steer_ui.contrast import load_preset, preset_names
from steer_ui.textscore import scorer_for


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


def test_classifier_fits_its_own_examples():
    p = load_preset("formal-casual")
    s = scorer_for("formal-casual")
    pos, neg = s.score(p["positive_examples"]), s.score(p["negative_examples"])
    assert pos.mean() > 0.7 and neg.mean() < 0.3


@pytest.mark.parametrize("preset", preset_names())
def test_every_preset_scorer_builds(preset):
    s = scorer_for(preset)
    assert s.kind == ("sentiment" if load_preset(preset).get("scorer") == "sentiment" else "classifier")
    out = s.score(["Hello there.", "The report is attached."])
    assert out.shape == (2,)
    assert np.all((out >= 0) & (out <= 1))
    p = load_preset(preset)
    if p.get("positive_examples"):
        pos = s.score(p["positive_examples"][:5]).mean()
        neg = s.score(p["negative_examples"][:5]).mean()
        assert pos > neg
