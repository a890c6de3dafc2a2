"""steer_ui.transfer.paired: the neutral corpus, concept prompts, paired collection and its disk cache."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch

from conftest import make_tiny
from steer_ui.concepts import contrast, recording
from steer_ui.errors import TransferError
from steer_ui.transfer import paired


pytestmark = pytest.mark.usefixtures("one_thread_module", "isolated_cache")


@pytest.fixture
def pair():
    llm, slm = make_tiny("llama"), make_tiny("gpt2", seed=1)
    llm.name, slm.name = "tiny-paired-llm", "tiny-paired-slm"
    return llm, slm


def test_neutral_corpus():
    texts = paired.neutral_texts()
    assert len(texts) >= 1000
    assert len(set(texts)) == len(texts)
    assert all(t.strip() for t in texts)


def test_neutral_texts_limit_and_extra():
    first = paired.neutral_texts(5, extra=["my own line", "   "])
    assert first[:5] == paired.neutral_texts()[:5]
    assert first[5:] == ["my own line"]  # blank extra lines dropped


def test_concept_prompts_leave_out_the_concept_and_its_family():
    sets = paired.concept_prompts("happy-sad")
    names = [cs.name for cs in sets]
    family = {"happy-sad", "optimistic-pessimistic", "angry-calm"}
    assert not family & set(names)
    assert sorted(names) == sorted(n for n in contrast.preset_names() if n not in family)
    assert len(names) == len(contrast.preset_names()) - 3 >= 5
    assert all(len(cs) == 16 for cs in sets)
    assert len(paired.concept_prompts(None)) == len(contrast.preset_names())
    # a concept in no family (a user's own) leaves out only itself
    assert len(paired.concept_prompts("my-own-concept")) == len(contrast.preset_names())


def test_collect_neutral(pair, tmp_path):
    llm, slm = pair
    before = {lm.name: lm.forward_passes for lm in pair}
    p = paired.collect(llm, slm, ("neutral",), n_neutral=40)
    assert len(p) == 80
    assert p.x.shape == (80, llm.n_layers, llm.hidden_size)
    assert p.y.shape == (80, slm.n_layers, slm.hidden_size)
    assert p.x.dtype == np.float32 and p.y.dtype == np.float32
    assert (p.source == "neutral").all()
    assert llm.forward_passes > before.get(llm.name, 0)
    assert slm.forward_passes > before.get(slm.name, 0)
    # rows 0..39: mean pooling, rows 40..79: last token, of the same 40 texts
    texts = paired.neutral_texts(40)
    last = recording.record(llm, texts, "last").numpy()
    mean = recording.record(llm, texts, "mean").numpy()
    np.testing.assert_allclose(p.x[40:], last, atol=1e-5)
    np.testing.assert_allclose(p.x[:40], mean, atol=1e-5)
    assert not np.allclose(p.x[:40], p.x[40:])
    assert len(list((tmp_path / "acts").glob("*.safetensors"))) == 2
    # a text's two rows (mean and last) share its group id; different texts do not
    assert (p.group[:40] == p.group[40:]).all() and len(set(p.group)) == 40
    assert p.data == paired.MapData((), 0, 40, ())


def test_collect_served_from_disk_cache(pair, tmp_path, monkeypatch):
    llm, slm = pair
    first = paired.collect(llm, slm, ("neutral",), n_neutral=40)
    files = sorted((tmp_path / "acts").glob("*.safetensors"))
    assert len(files) == 2
    assert any(llm.name in f.name for f in files) and any(slm.name in f.name for f in files)
    # a fresh process: empty memory cache; the disk must serve it without any forward pass
    monkeypatch.setattr(recording, "_CACHE", OrderedDict())
    passes = {lm.name: lm.forward_passes for lm in (llm, slm)}
    second = paired.collect(llm, slm, ("neutral",), n_neutral=40)
    assert {lm.name: lm.forward_passes for lm in (llm, slm)} == passes
    np.testing.assert_array_equal(first.x, second.x)
    np.testing.assert_array_equal(first.y, second.y)
    assert first.key == second.key
    # control: without the files (and the memory cache) the models do run again
    for f in files:
        f.unlink()
    monkeypatch.setattr(recording, "_CACHE", OrderedDict())
    paired.collect(llm, slm, ("neutral",), n_neutral=40)
    assert llm.forward_passes > passes.get(llm.name, 0)
    assert slm.forward_passes > passes.get(slm.name, 0)


def test_corrupt_cache_entry_is_recomputed(pair, tmp_path, monkeypatch):
    """Only the LLM's entry is corrupted: the LLM runs again and its entry is rewritten
    as safetensors, while the SLM's good entry is still served without a forward pass."""
    from safetensors.torch import load_file

    llm, slm = pair
    first = paired.collect(llm, slm, ("neutral",), n_neutral=40)
    (bad,) = [f for f in (tmp_path / "acts").glob("*.safetensors") if llm.name in f.name]
    bad.write_bytes(b"not a safetensors file")
    monkeypatch.setattr(recording, "_CACHE", OrderedDict())
    passes = {lm.name: lm.forward_passes for lm in (llm, slm)}
    second = paired.collect(llm, slm, ("neutral",), n_neutral=40)
    assert llm.forward_passes > passes.get(llm.name, 0)
    assert slm.forward_passes == passes.get(slm.name, 0)
    np.testing.assert_allclose(second.x, first.x, atol=1e-6)
    np.testing.assert_array_equal(second.y, first.y)
    rewritten = load_file(str(bad))["acts"].numpy()  # (texts, layers, 2 poolings, d)
    np.testing.assert_allclose(np.concatenate([rewritten[:, :, 0], rewritten[:, :, 1]]), first.x, atol=1e-6)


def test_key_depends_on_texts(pair):
    llm, slm = pair
    a = paired.collect(llm, slm, ("neutral",), n_neutral=40)
    b = paired.collect(llm, slm, ("neutral",), n_neutral=40, extra_texts=["one more neutral line"])
    assert len(b) == 82
    assert a.key != b.key


def test_collect_concept_source(pair):
    llm, slm = pair
    p = paired.collect(llm, slm, ("concept",), leave_out="happy-sad")
    expected = sum(2 * len(cs) for cs in paired.concept_prompts("happy-sad"))
    assert len(p) == expected
    assert (p.source == "concept").all()
    assert "happy-sad" in p.key
    both = paired.collect(llm, slm, ("neutral", "concept"), leave_out="happy-sad", n_neutral=40)
    assert len(both) == expected + 80
    assert sorted(set(both.source)) == ["concept", "neutral"]


def test_collect_records_groups_and_what_the_map_saw(pair):
    llm, slm = pair
    p = paired.collect(llm, slm, ("neutral", "concept"), leave_out="formal-casual", n_neutral=40, per_preset=4)
    sets = paired.concept_prompts("formal-casual", 4)
    assert p.data.concept_presets == tuple(cs.name for cs in sets)
    assert p.data.concept_texts == 8 * len(sets) == int((p.source == "concept").sum())
    assert p.data.neutral_texts == 40
    assert {"formal-casual", "polite-rude"} <= set(p.data.left_out)
    assert not set(p.data.left_out) & set(p.data.concept_presets)
    # both sides of one contrast scenario share an id: 4 pairs of each preset, 2 rows each
    concept = p.group[p.source == "concept"]
    assert len(set(concept)) == 4 * len(sets)
    first = sets[0].name
    assert list(concept[:8]) == [f"{first}:{k}" for k in range(4)] * 2
    assert p.data.as_dict()["left_out"] == list(p.data.left_out)


def test_too_few_texts(pair):
    llm, slm = pair
    with pytest.raises(TransferError, match=str(paired.MIN_TEXTS)) as err:
        paired.collect(llm, slm, ("neutral",), n_neutral=10)
    assert "20" in str(err.value)


@pytest.mark.parametrize("sources", [("bogus",), ("neutral", "bogus"), ()])
def test_unknown_source(pair, sources):
    llm, slm = pair
    with pytest.raises(TransferError, match="sources"):
        paired.collect(llm, slm, sources, n_neutral=40)


def test_normalized():
    acts = np.ones((4, 3, 2), np.float32)
    out = paired.normalized(acts, torch.tensor([1.0, 2.0, 4.0]))
    np.testing.assert_allclose(out[0, :, 0], [1.0, 0.5, 0.25])
