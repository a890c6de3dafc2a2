"""steer_ui.concepts.contrast: typed lists, presets, CAA A/B files, letter balancing, file errors."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from conftest import FIXTURES, make_tiny
from steer_ui.concepts import contrast
from steer_ui.concepts.contrast import (
    ContrastSet,
    Prompt,
    from_ab_items,
    from_lists,
    from_preset,
    from_source,
    preset_names,
    read_items,
    swap_options,
)
from steer_ui.errors import ContrastError

AB = FIXTURES / "ab_small.json"


# ---------- typed lists ----------

def test_from_lists_multiline_strings():
    cs = from_lists("I love it\n\n  great day  \n\n", "I hate it\n   \nawful day\n", name="mood")
    assert len(cs) == 2
    assert cs.positive == (Prompt("I love it"), Prompt("great day"))
    assert cs.negative == (Prompt("I hate it"), Prompt("awful day"))
    assert cs.name == "mood" and cs.source == "lists" and cs.letters == ()


def test_from_lists_python_lists():
    cs = from_lists(["a", "", "b", "c"], ["x", "y", "  ", "z"])
    assert [p.user for p in cs.positive] == ["a", "b", "c"]
    assert [p.user for p in cs.negative] == ["x", "y", "z"]


@pytest.mark.parametrize("pos,neg", [("", "a\nb"), ("a\nb", ""), ("\n\n", "  \n"), ([], [])])
def test_from_lists_empty(pos, neg):
    with pytest.raises(ContrastError, match="Both the positive and the negative list need prompts"):
        from_lists(pos, neg)


def test_from_lists_unequal_lengths():
    with pytest.raises(ContrastError, match=r"3 positive vs 2 negative prompts"):
        from_lists("a\nb\nc", "x\ny")


def test_from_lists_single_pair():
    with pytest.raises(ContrastError, match="at least 2 pairs"):
        from_lists("a", "b")


def test_from_lists_all_identical():
    with pytest.raises(ContrastError, match="no contrast"):
        from_lists("a\nb\nc", "a\nb\nc")
    # one differing pair is enough
    assert len(from_lists("a\nb\nc", "a\nb\nd")) == 3


def test_contrast_set_helpers():
    cs = from_lists(["a", "b"], ["c", "d"])
    same = from_lists(["a", "b"], ["c", "d"], name="other")
    assert cs.digest() == same.digest()
    assert cs.digest() != from_lists(["a", "b"], ["c", "e"]).digest()
    assert cs.digest() != from_lists(["c", "d"], ["a", "b"]).digest()
    long = ContrastSet("x", (Prompt("q" * 200, "ans"), Prompt("b")), (Prompt("c"), Prompt("d")))
    pos_labels, neg_labels = long.labels()
    assert len(pos_labels[0]) == 90 and pos_labels[0].endswith("...")
    assert pos_labels[1] == "b" and neg_labels == ["c", "d"]
    short = ContrastSet("x", (Prompt("q", "ans"), Prompt("b")), (Prompt("c"), Prompt("d")))
    assert short.labels()[0][0] == "q | ans"


def test_texts_use_chat_format():
    lm = make_tiny("llama")
    cs = ContrastSet("x", (Prompt("hi", "(A)"), Prompt("b")), (Prompt("hi", "(B)"), Prompt("d")))
    pos, neg = cs.texts(lm)
    assert pos == ["hi\n(A)", "b\n"] and neg == ["hi\n(B)", "d\n"]


# ---------- presets ----------

# The shipped presets, written out: a preset lost from assets/presets (or a stray file
# there) changes what users are offered, and should be a deliberate edit of this list.
PRESETS = ["angry-calm", "confident-uncertain", "formal-casual", "french-english", "happy-sad",
           "honest-deceptive", "optimistic-pessimistic", "polite-rude", "refuse-comply", "verbose-terse"]


def test_presets_all_load():
    names = preset_names()
    assert names == PRESETS  # in sorted order
    for name in names:
        cs = from_preset(name)
        assert len(cs) >= 32, name
        assert cs.source == f"preset:{name}" and cs.name == name
        assert all(p != n for p, n in zip(cs.positive, cs.negative)), name
        assert len(set(p.user for p in cs.positive)) == len(cs), name  # no duplicate prompts


def test_preset_builds_from_personas():
    raw = contrast.load_preset("happy-sad")
    cs = from_preset("happy-sad", limit=5)
    assert len(cs) == 5
    first = raw["template"].format(persona=raw["positive_persona"], scenario=raw["scenarios"][0])
    assert cs.positive[0].user == first
    assert cs.negative[0].user == raw["template"].format(persona=raw["negative_persona"],
                                                         scenario=raw["scenarios"][0])


def test_unknown_preset():
    with pytest.raises(ContrastError, match=r"Unknown preset 'nope'. Presets: .*happy-sad"):
        from_preset("nope")


# ---------- A/B items ----------

CAA_Q = "Do you like it?\n\nChoices:\n (A) yes, very much\n (B) no, not at all"


def test_swap_options():
    swapped = swap_options(CAA_Q)
    assert swapped == "Do you like it?\n\nChoices:\n (A) no, not at all\n (B) yes, very much"
    assert swap_options(swapped) == CAA_Q


def test_swap_options_without_pair():
    assert swap_options("no options here") is None
    assert swap_options("Choices:\n (A) only one") is None
    assert swap_options("Choices:\n (A) a\n (B) b\n (C) c") is None


def test_from_ab_items_file_balanced():
    items = json.loads(AB.read_text())
    cs = from_ab_items(items, "opt")
    assert len(cs) == 2 * len(items)
    assert cs.source == "ab:opt"
    assert len(cs.letters) == len(cs)
    counts = Counter(cs.letters)
    assert counts["A"] == counts["B"] == len(items)
    # Pair 2i is the item as given, 2i+1 the same item with its options swapped.
    for i, item in enumerate(items):
        p, n = cs.positive[2 * i], cs.negative[2 * i]
        assert p == Prompt(item["question"], item["answer_matching_behavior"])
        assert n == Prompt(item["question"], item["answer_not_matching_behavior"])
        ps, ns = cs.positive[2 * i + 1], cs.negative[2 * i + 1]
        assert ps.user == swap_options(item["question"]) != item["question"]
        assert ps.answer == item["answer_not_matching_behavior"]
        assert ns.answer == item["answer_matching_behavior"]
        assert cs.letters[2 * i] != cs.letters[2 * i + 1]


def test_swapped_item_keeps_its_meaning():
    cs = from_ab_items([{"question": CAA_Q, "answer_matching_behavior": "(A)",
                         "answer_not_matching_behavior": "(B)"},
                        {"question": CAA_Q, "answer_matching_behavior": "(B)",
                         "answer_not_matching_behavior": "(A)"}])
    assert cs.letters == ("A", "B", "B", "A")
    # the positive side of the swapped copy still picks "yes, very much"
    swapped_pos = cs.positive[1]
    assert swapped_pos.answer == "(B)" and " (B) yes, very much" in swapped_pos.user


def test_from_ab_items_unbalanced():
    items = json.loads(AB.read_text())
    cs = from_ab_items(items, balance=False)
    assert len(cs) == len(items)


def test_from_ab_items_missing_field():
    items = json.loads(AB.read_text())
    del items[2]["answer_not_matching_behavior"]
    with pytest.raises(ContrastError, match=r"Item 3 lacks the field 'answer_not_matching_behavior'"):
        from_ab_items(items)


def test_from_ab_items_identical_answers():
    items = [{"question": "q", "answer_matching_behavior": "(A)", "answer_not_matching_behavior": "(A) "}] * 2
    with pytest.raises(ContrastError, match="Item 1 has an empty question or two identical answers"):
        from_ab_items(items)


# ---------- files ----------

def test_read_items_json_and_jsonl(tmp_path):
    assert len(read_items(AB)) == 12
    rows = read_items(FIXTURES / "generic_small.jsonl")
    assert rows and all("prompt" in r for r in rows)
    f = tmp_path / "x.jsonl"
    f.write_text('{"a": 1}\n\n{"a": 2}\n', encoding="utf-8")
    assert read_items(f) == [{"a": 1}, {"a": 2}]


def test_read_items_not_utf8(tmp_path):
    f = tmp_path / "latin.json"
    f.write_bytes(b'[{"question": "caf\xe9"}]')
    with pytest.raises(ContrastError, match=r"latin.json is not UTF-8 text \(byte 18\)"):
        read_items(f)


def test_read_items_invalid_json_names_line(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"a": 1}\n{"a": 2}\n{"a": oops}\n', encoding="utf-8")
    with pytest.raises(ContrastError, match=r"bad.jsonl is not valid JSON/JSONL: .* at line 1"):
        read_items(f)
    g = tmp_path / "bad.json"
    g.write_text('[\n  {"a": 1},\n  {"a": 2,}\n]\n', encoding="utf-8")
    with pytest.raises(ContrastError, match=r"bad.json is not valid JSON/JSONL: .* at line 3"):
        read_items(g)


def test_read_items_object_not_list(tmp_path):
    f = tmp_path / "obj.json"
    f.write_text('{"question": "q"}', encoding="utf-8")
    # an object on one line reads as JSONL of one item; a list of non-objects is refused
    assert read_items(f) == [{"question": "q"}]
    g = tmp_path / "nums.json"
    g.write_text("[1, 2, 3]", encoding="utf-8")
    with pytest.raises(ContrastError, match="must hold a list of objects"):
        read_items(g)
    h = tmp_path / "multi.json"
    h.write_text('{\n  "question": "q"\n}\n', encoding="utf-8")
    with pytest.raises(ContrastError, match="not valid JSON/JSONL"):
        read_items(h)


def test_read_items_missing_and_too_big(tmp_path, monkeypatch):
    with pytest.raises(ContrastError, match="does not exist"):
        read_items(tmp_path / "none.json")
    f = tmp_path / "big.json"
    f.write_text("[" + ",".join(["{}"] * 100) + "]")
    monkeypatch.setenv("STEER_UI_MAX_UPLOAD_MB", "0")
    with pytest.raises(ContrastError, match="larger than"):
        read_items(f)


def test_from_source_preset():
    cs = from_source("happy-sad", limit=10)
    assert len(cs) == 10 and cs.source == "preset:happy-sad"
    assert len(from_source("happy-sad")) == len(from_preset("happy-sad"))


def test_from_source_two_lists(tmp_path):
    f = tmp_path / "mine.json"
    f.write_text(json.dumps({"positive": ["a", "b", "c"], "negative": ["x", "y", "z"]}), encoding="utf-8")
    cs = from_source(str(f))
    assert cs.name == "mine" and [p.user for p in cs.positive] == ["a", "b", "c"]
    assert len(from_source(str(f), limit=2)) == 2


def test_from_source_two_lists_missing_key(tmp_path):
    f = tmp_path / "half.json"
    f.write_text(json.dumps({"positive": ["a", "b"]}), encoding="utf-8")
    with pytest.raises(ContrastError, match="needs the keys 'positive' and 'negative'"):
        from_source(str(f))


def test_from_source_broken_json_object(tmp_path):
    f = tmp_path / "broken.json"
    f.write_text('{"positive": ["a", "b"], "negative": ["x" "y"]}', encoding="utf-8")
    with pytest.raises(ContrastError, match="broken.json"):
        from_source(str(f))


def test_from_source_jsonl_named_json(tmp_path):
    items = json.loads(AB.read_text())
    f = tmp_path / "caa.json"
    f.write_text("\n".join(json.dumps(i) for i in items[:4]), encoding="utf-8")
    cs = from_source(str(f))
    assert len(cs) == 8 and cs.source == "ab:caa"


def test_from_source_ab_file():
    cs = from_source(str(AB))
    assert cs.source == "ab:ab_small" and len(cs) == 24
    assert len(from_source(str(AB), limit=3)) == 6


def test_from_source_unknown():
    with pytest.raises(ContrastError, match=r"'nope' is neither a preset \(.*happy-sad.*\) nor a file"):
        from_source("nope")


# ---------- one letter-swap rule for contrast sets and scored datasets ----------

def test_the_letter_swap_of_contrast_sets_and_of_datasets_agree():
    from steer_ui.evaluation.scoring import Item, balanced

    question = "Is the sea wet?\n\nChoices:\n (A) Yes, it is.\n (B) No, it is not."
    for match, other in (("(A)", "(B)"), ("(B) No", "(A) Yes"), (" (A) Yes, it is.", " (B) No, it is not.")):
        cs = contrast.from_ab_items([{"question": question, "answer_matching_behavior": match,
                                      "answer_not_matching_behavior": other}])
        rows, _ = balanced([Item(question, (match, other), 0)])
        assert len(cs) == 2 and len(rows) == 2
        swapped = rows[1]
        # the contrast set's swapped pair is the dataset's swapped item, answer for answer
        assert (cs.positive[1].user, cs.positive[1].answer, cs.negative[1].answer) == \
            (swapped.prompt, swapped.choices[0], swapped.choices[1])
        # and it points at the same option text as before the swap
        text = {"A": "Yes, it is.", "B": "No, it is not."}
        letter = lambda a: a.strip()[1]  # noqa: E731
        before = text[letter(match)]
        after = dict(zip("AB", ("No, it is not.", "Yes, it is.")))[letter(swapped.choices[0])]
        assert before == after, (match, swapped)
    assert contrast.swap_letters("No options here", ("(A)", "(B)")) is None
    assert contrast.swap_letters(question, ("yes", "no")) is None
