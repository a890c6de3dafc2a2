"""steer_ui.evaluation.scoring: dataset loading and its errors, letter balancing, exact batched
choice log-probabilities under steering, and the metrics."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from conftest import FIXTURES
from steer_ui.concepts.vectors import ConceptVector
from steer_ui.errors import DatasetError, IntensityError, SteerError
from steer_ui.evaluation.scoring import (
    Item,
    Scores,
    balance_letters,
    choice_logprobs,
    ci,
    load_items,
    margin,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    yield


# ---------- loading ----------

def test_load_caa_fixture():
    items = load_items(FIXTURES / "ab_small.json")
    raw = json.loads((FIXTURES / "ab_small.json").read_text())
    assert len(items) == len(raw) == 12
    for it, r in zip(items, raw):
        assert it.prompt == r["question"]
        assert it.choices == (r["answer_matching_behavior"], r["answer_not_matching_behavior"])
        assert it.answer == 0  # the matching answer is listed first
        assert it.choices[it.answer] == r["answer_matching_behavior"]


def test_load_generic_fixture():
    items = load_items(FIXTURES / "generic_small.jsonl")
    raw = [json.loads(line) for line in (FIXTURES / "generic_small.jsonl").read_text().splitlines() if line.strip()]
    assert len(items) == len(raw) == 12
    assert items[0].answer == 1 and items[0].choices == ("negative", "positive")
    assert items[1].answer == 1 and items[2].answer == 0
    for it, r in zip(items, raw):
        assert it.choices[it.answer] == r["answer"]
        assert list(it.choices) == r["choices"]


def _write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


GOOD = {"prompt": "q", "choices": ["a", "b"], "answer": "a"}


def _jsonl(*rows):
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n"


@pytest.mark.parametrize("bad,pattern", [
    ({"prompt": "q", "choices": ["a", "b"]}, r"line 2: missing field\(s\) answer"),
    ({"choices": ["a", "b"], "answer": "a"}, r"line 2: missing field\(s\) prompt"),
    ({"prompt": "q", "choices": ["a", "b"], "answer": "c"}, r"line 2: answer 'c' is not among"),
    ({"prompt": "q", "choices": [], "answer": "a"}, r"line 2: needs at least two distinct"),
    ({"prompt": "q", "choices": ["a"], "answer": "a"}, r"line 2: needs at least two distinct"),
    ({"prompt": "q", "choices": ["a", "a"], "answer": "a"}, r"line 2: needs at least two distinct"),
    ({"prompt": "q", "choices": ["a", " "], "answer": "a"}, r"line 2: needs at least two distinct"),
    ({"prompt": " ", "choices": ["a", "b"], "answer": "a"}, r"line 2: empty prompt"),
    ({"prompt": "q", "choices": None, "answer": "a"}, r"line 2: choices must be a list"),
    ({"prompt": "q", "choices": 3, "answer": "a"}, r"line 2: choices must be a list"),
    ({"prompt": "q", "choices": "ab", "answer": "a"}, r"line 2: choices must be a list"),
    ({"question": "q", "answer_matching_behavior": "(A)"}, r"line 2: CAA item lacks 'answer_not_matching_behavior'"),
    ({"question": "q", "answer_matching_behavior": "(A)", "answer_not_matching_behavior": "(A)"},
     r"line 2: needs at least two distinct"),
    ([1, 2], r"line 2: expected an object"),
    ("{not json", r"line 2: invalid JSON"),
])
def test_malformed_jsonl_names_the_line(tmp_path, bad, pattern):
    path = _write(tmp_path, "data.jsonl", _jsonl(GOOD, bad, GOOD))
    with pytest.raises(DatasetError, match=pattern) as err:
        load_items(path)
    assert "data.jsonl" in str(err.value)


def test_malformed_json_list_names_the_item(tmp_path):
    path = _write(tmp_path, "data.json", json.dumps([GOOD, GOOD, {"prompt": "q", "choices": ["a", "b"], "answer": "z"}]))
    with pytest.raises(DatasetError, match="data.json item 3: answer 'z'"):
        load_items(path)


def test_invalid_json_list(tmp_path):
    path = _write(tmp_path, "data.json", '[{"prompt": "q",\n "choices": ["a", "b"],\n "answer": }]')
    with pytest.raises(DatasetError, match="invalid JSON at line 3"):
        load_items(path)


def test_non_utf8(tmp_path):
    path = _write(tmp_path, "data.jsonl", b'{"prompt": "caf\xe9", "choices": ["a", "b"], "answer": "a"}\n')
    with pytest.raises(DatasetError, match=r"not UTF-8 text \(byte 15\)"):
        load_items(path)


@pytest.mark.parametrize("content", ["", "\n\n  \n", "[]", "  [ ]\n"])
def test_empty_file(tmp_path, content):
    path = _write(tmp_path, "empty.jsonl" if "[" not in content else "empty.json", content)
    with pytest.raises(DatasetError, match="holds no items"):
        load_items(path)


def test_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_items(tmp_path / "nope.json")


def test_blank_lines_are_skipped_and_numbers_kept(tmp_path):
    path = _write(tmp_path, "data.jsonl", "\n" + _jsonl(GOOD) + "\n\n" + _jsonl({"prompt": "q", "answer": "a"}))
    with pytest.raises(DatasetError, match="line 5"):
        load_items(path)


# ---------- letter balancing ----------

_OPT = re.compile(r"^\s*\(([AB])\)\s?(.*)$", re.M)


def _option_text(prompt: str, answer: str) -> str:
    letter = answer.strip()[1]
    return {m.group(1): m.group(2) for m in _OPT.finditer(prompt)}[letter]


def test_balance_letters_caa():
    items = load_items(FIXTURES / "ab_small.json")
    out = balance_letters(items)
    assert len(out) == 2 * len(items)
    for k, it in enumerate(items):
        orig, swapped = out[2 * k], out[2 * k + 1]
        assert orig == it
        assert swapped.prompt != it.prompt
        assert swapped.answer == it.answer
        # the answer letter flips ...
        assert swapped.choices[swapped.answer].strip()[:3] != it.choices[it.answer].strip()[:3]
        assert {c.strip()[:3] for c in swapped.choices} == {"(A)", "(B)"}
        # ... and still points at the same option text
        assert _option_text(swapped.prompt, swapped.choices[swapped.answer]) == \
            _option_text(it.prompt, it.choices[it.answer])
        other = 1 - it.answer
        assert _option_text(swapped.prompt, swapped.choices[other]) == _option_text(it.prompt, it.choices[other])
    # balanced: "(A)" is the right answer exactly half of the time
    letters = [it.choices[it.answer].strip()[:3] for it in out]
    assert letters.count("(A)") == letters.count("(B)") == len(items)


def test_balance_letters_keeps_answer_text_after_letter():
    it = Item("Which?\n\nChoices:\n (A) red\n (B) blue", ("(B) blue", "(A) red"), 0)
    orig, swapped = balance_letters([it])
    assert swapped.prompt == "Which?\n\nChoices:\n (A) blue\n (B) red"
    assert swapped.choices == ("(A) blue", "(B) red")
    assert swapped.choices[swapped.answer] == "(A) blue"


def test_balance_letters_leaves_generic_items():
    items = load_items(FIXTURES / "generic_small.jsonl")
    assert balance_letters(items) == items


# ---------- choice log-probabilities ----------

ITEMS = [
    Item("i am very", ("happy", "sad day"), 0),
    Item("the night is not good and you are", ("bad", "good", "very happy"), 2),
    Item("w1 w2", ("w3 w4 w5", "w6"), 1),
    Item("you", ("are happy", "am sad"), 0),
]


def _vector(lm, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ConceptVector(torch.randn(lm.n_layers, lm.hidden_size, generator=g), model=lm.name, default_layer=1)


def _manual_logprob(lm, prompt: str, choice: str) -> float:
    """Unbatched, unpadded: the summed log-prob of the choice's tokens after the chat prompt."""
    chat = lm.chat(prompt)
    special = not getattr(lm.tokenizer, "chat_template", None)
    full = lm.tokenizer(chat + choice, add_special_tokens=special, return_tensors="pt")["input_ids"]
    n_prompt = len(lm.tokenizer(chat, add_special_tokens=special)["input_ids"])
    with torch.no_grad():
        logits = lm.model(input_ids=full, use_cache=False).logits[0].float()
    logp = torch.log_softmax(logits, -1)
    return float(sum(logp[t - 1, full[0, t]] for t in range(n_prompt, full.shape[1])))


def test_choice_logprobs_equal_manual(tiny):
    out = choice_logprobs(tiny, ITEMS)
    assert out.shape == (4, 1, 3)
    for i, it in enumerate(ITEMS):
        for c, choice in enumerate(it.choices):
            assert out[i, 0, c] == pytest.approx(_manual_logprob(tiny, it.prompt, choice), abs=1e-4)
        assert all(out[i, 0, c] == -np.inf for c in range(len(it.choices), 3))
    assert (out[np.isfinite(out)] < 0).all()


def test_choice_logprobs_grid_shape_and_batching(tiny):
    v = _vector(tiny)
    grid = [0.0, 1.5, -2.0]
    full = choice_logprobs(tiny, ITEMS, v, grid)
    assert full.shape == (len(ITEMS), len(grid), 3)
    for i, it in enumerate(ITEMS):
        for k, x in enumerate(grid):
            alone = choice_logprobs(tiny, [it], v, [x])
            assert alone.shape == (1, 1, len(it.choices))
            np.testing.assert_allclose(alone[0, 0], full[i, k, : len(it.choices)], atol=1e-4)
    # steering changes the scores, differently per intensity
    ok = np.isfinite(full[:, 0])
    assert np.abs(full[:, 1][ok] - full[:, 0][ok]).max() > 1e-3
    assert np.abs(full[:, 2][ok] - full[:, 1][ok]).max() > 1e-3


def test_intensity_zero_equals_no_vector(tiny):
    v = _vector(tiny)
    grid = [0.0, 2.0]
    steered = choice_logprobs(tiny, ITEMS, v, grid)
    plain = choice_logprobs(tiny, ITEMS, None, grid)
    np.testing.assert_allclose(steered[:, 0], plain[:, 0], atol=1e-5)
    np.testing.assert_array_equal(plain[:, 0], plain[:, 1])  # no vector: every intensity is unsteered
    np.testing.assert_allclose(plain[:, 0], choice_logprobs(tiny, ITEMS)[:, 0], atol=1e-5)


def test_steered_row_matches_manual_steering(tiny):
    from steer_ui.steering.hooks import steer

    v = _vector(tiny)
    out = choice_logprobs(tiny, ITEMS[:2], v, [1.0])
    with steer(tiny, v, 1.0):
        for i, it in enumerate(ITEMS[:2]):
            for c, choice in enumerate(it.choices):
                assert out[i, 0, c] == pytest.approx(_manual_logprob(tiny, it.prompt, choice), abs=1e-4)


@pytest.mark.parametrize("layers", [1, [0, 2]])
def test_shared_prefix_scoring_equals_full_sequences_in_every_arch(tiny_any, layers):
    """The fan-out prefix pass + cached answers == each row run alone as a full sequence,
    for every architecture family, one or several steered layers, and choices that share
    leading tokens ("are happy" / "am sad" both start with a)."""
    from steer_ui.steering.hooks import hooks_left, steer

    v = _vector(tiny_any)
    grid = [-1.0, 0.0, 2.0]
    out = choice_logprobs(tiny_any, ITEMS, v, grid, layers)
    for k, x in enumerate(grid):
        with steer(tiny_any, v, x, layers):
            for i, it in enumerate(ITEMS):
                manual = [_manual_logprob(tiny_any, it.prompt, c) for c in it.choices]
                np.testing.assert_allclose(out[i, k, : len(it.choices)], manual, atol=1e-4)
    assert hooks_left(tiny_any) == 0


def test_fan_out_needs_a_one_row_batch(tiny):
    from steer_ui.steering.hooks import steer

    batch = tiny.tokenizer(["a b", "c d"], return_tensors="pt")
    with pytest.raises(SteerError, match="one-row batch"), steer(tiny, _vector(tiny), [1.0, 2.0], fan_out=True):
        tiny.model(**batch)


def test_item_longer_than_the_context_is_named(tiny):
    long = Item("w1 " * 200, ("yes", "no"), 0)
    with pytest.raises(DatasetError, match=r"Item 'w1 w1.*, with choice #1 is 2\d\d tokens long, more than the model's context of 128"):
        choice_logprobs(tiny, [ITEMS[0], long])


def test_choice_logprobs_rejects_bad_intensity(tiny):
    with pytest.raises(IntensityError):
        choice_logprobs(tiny, ITEMS, _vector(tiny), [float("nan")])


# ---------- metrics ----------

def test_scores_from_logprobs():
    logp = np.array([[-1.0, -2.0], [-3.0, -0.5], [-0.1, -np.inf]])
    s = Scores.from_logprobs(logp, np.array([0, 0, 1]))
    np.testing.assert_array_equal(s.correct, [1.0, 0.0, 0.0])
    np.testing.assert_allclose(s.p_match, [1 / (1 + np.exp(-1)), np.exp(-3) / (np.exp(-3) + np.exp(-0.5)), 0.0])


def _percentile_bootstrap(values, seed, level=0.95, resamples=2000):
    """A percentile bootstrap CI of the mean, by hand, with scipy's draws: an int
    ``random_state`` is a legacy ``RandomState``, and each resample is ``randint(0, n, n)``."""
    picks = np.random.RandomState(seed).randint(0, len(values), (resamples, len(values)))
    tail = (1 - level) / 2
    return np.quantile(values[picks].mean(1), [tail, 1 - tail]).tolist()


def test_ci():
    values = np.array([0, 1, 1, 0, 1, 1, 1, 0, 1, 1], float)
    # 7/10 correct: the 95% percentile interval of the mean is [0.4, 1.0]
    assert ci(values) == pytest.approx([0.4, 1.0])
    # continuous values have no ties, so every percentile and the seed show
    w = np.random.default_rng(1).standard_normal(30)
    for seed in (0, 3):
        assert ci(w, seed) == pytest.approx(_percentile_bootstrap(w, seed))
    assert ci(w, 0) != pytest.approx(ci(w, 3))
    # a 90% interval (or [5, 95] percentiles) would be visibly narrower
    assert ci(w) != pytest.approx(_percentile_bootstrap(w, 0, level=0.9), abs=0.02)
    assert ci(np.ones(7)) == [1.0, 1.0]
    assert ci(np.array([0.25])) == [0.25, 0.25]
    wide, narrow = ci(values[:4]), ci(np.tile(values, 20))
    assert narrow[1] - narrow[0] < wide[1] - wide[0]


def test_margin():
    logp = np.array([[-1.0, -3.0, -0.5], [-2.0, -2.0, -np.inf]])
    np.testing.assert_allclose(margin(logp), [0.5, 0.0])
    grid = np.stack([logp, logp * 2], 1)  # (n, intensities, choices)
    np.testing.assert_allclose(margin(grid), [[0.5, 1.0], [0.0, 0.0]])


def test_ci_resamples_items_not_their_letter_balanced_rows():
    """An item shown in both letter orders is one observation: duplicating every row
    must not narrow the interval when the groups say which rows belong together."""
    from steer_ui.evaluation.scoring import ci

    values = np.array([1.0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 1, 0, 0, 1, 1])
    rows = np.repeat(values, 2)  # each item twice, as balance_letters shows it
    groups = np.repeat(np.arange(len(values)), 2)
    by_item = ci(values)
    naive, clustered = ci(rows), ci(rows, groups=groups)
    width = lambda c: c[1] - c[0]  # noqa: E731
    assert width(naive) < 0.8 * width(by_item)  # rows as if independent: too narrow
    assert width(clustered) == pytest.approx(width(by_item), rel=0.2)
    # the cluster bootstrap by hand: resample items, weight by their rows
    rng = np.random.default_rng(0)
    draws = rng.integers(0, len(values), (2000, len(values)))
    means = (values[draws] * 2).sum(1) / (2 * len(values))
    assert clustered == pytest.approx(list(np.percentile(means, [2.5, 97.5])))


def test_balanced_rows_name_their_item():
    from steer_ui.evaluation.scoring import Item, balanced

    swappable = Item("Q?\n (A) yes\n (B) no", ("(A)", "(B)"), 0)
    plain = Item("Is it?", ("yes", "no"), 1)
    rows, groups = balanced([swappable, plain, swappable])
    assert groups == [0, 0, 1, 2, 2]
    assert rows[1].prompt == "Q?\n (A) no\n (B) yes" and rows[1].choices == ("(B)", "(A)")


# ---------- a system prompt (the prompting arm) ----------

SYSTEM = "you are very happy"


def test_item_prompt_holds_the_system_prompt(tiny):
    from steer_ui.evaluation.scoring import item_prompt

    it = ITEMS[0]
    assert item_prompt(tiny, it) == tiny.chat(it.prompt)
    told = item_prompt(tiny, it, SYSTEM)
    assert told == tiny.chat(it.prompt, SYSTEM) and SYSTEM in told and told.endswith(tiny.chat(it.prompt))


def test_choice_logprobs_with_a_system_prompt_equal_manual(tiny):
    """Scored after the system-prompted chat text, exactly; and not the plain scores."""
    out = choice_logprobs(tiny, ITEMS, system=SYSTEM)
    plain = choice_logprobs(tiny, ITEMS)
    for i, it in enumerate(ITEMS):
        for c, choice in enumerate(it.choices):
            expected = _manual_logprob_raw(tiny, tiny.chat(it.prompt, SYSTEM), choice)
            assert out[i, 0, c] == pytest.approx(expected, abs=1e-4)
    assert not np.allclose(out[np.isfinite(out)], plain[np.isfinite(plain)], atol=1e-3)


def _manual_logprob_raw(lm, text: str, choice: str) -> float:
    """The summed log-prob of the choice's tokens after ``text`` (already formatted)."""
    full = lm.tokenizer(text + choice, add_special_tokens=True, return_tensors="pt")["input_ids"]
    n_prompt = len(lm.tokenizer(text, add_special_tokens=True)["input_ids"])
    with torch.no_grad():
        logp = torch.log_softmax(lm.model(input_ids=full, use_cache=False).logits[0].float(), -1)
    return float(sum(logp[t - 1, full[0, t]] for t in range(n_prompt, full.shape[1])))


@pytest.mark.real
def test_system_prompt_reaches_a_chat_template(smollm):
    """With a real chat template the instruction sits in the system turn, before the
    question, in the very tokens that are scored."""
    from steer_ui.evaluation.scoring import _split, item_prompt

    it = Item("Is the sky blue?", ("yes", "no"), 0)
    text = item_prompt(smollm, it, "Answer correctly.")
    assert "system\nAnswer correctly." in text and text.index("Answer correctly.") < text.index("Is the sky blue?")
    prefix, _, _ = _split(smollm, it, "Answer correctly.")
    assert "Answer correctly." in smollm.tokenizer.decode(prefix)
    assert "Answer correctly." not in smollm.tokenizer.decode(_split(smollm, it)[0])
