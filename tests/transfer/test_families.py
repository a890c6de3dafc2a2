"""steer_ui.transfer.families: the table of concept families that leave-one-concept-out leaves out together."""

from __future__ import annotations

from collections import Counter

from steer_ui.concepts import contrast
from steer_ui.transfer.families import FAMILIES, family_of, relatives


def test_every_preset_is_in_exactly_one_family():
    listed = Counter(p for f in FAMILIES for p in f.presets)
    assert set(listed) == set(contrast.preset_names()), "the table names a preset that does not exist, or misses one"
    assert max(listed.values()) == 1
    assert all(f.reason for f in FAMILIES) and len({f.name for f in FAMILIES}) == len(FAMILIES)


def test_near_relatives_are_left_out_together():
    assert set(relatives("happy-sad")) == {"happy-sad", "optimistic-pessimistic", "angry-calm"}
    assert set(relatives("angry-calm")) == set(relatives("happy-sad"))
    assert {"formal-casual", "polite-rude"} <= set(relatives("formal-casual"))
    assert "happy-sad" not in relatives("formal-casual")
    assert relatives("french-english") == ("french-english",)


def test_a_concept_in_no_family_leaves_out_only_itself():
    assert relatives("my-own-concept") == ("my-own-concept",)
    assert family_of("my-own-concept") is None
    assert relatives(None) == () and relatives("") == ()
    assert family_of("polite-rude").name == "register"
