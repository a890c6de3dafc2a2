"""assets/tasks/: our A/B task sets load, are balanced, and are big enough for 200 test items."""

from __future__ import annotations

from collections import Counter

import pytest

from steer_ui.config import ASSETS
from steer_ui.evaluation.scoring import balanced, load_items

# written by bench/make_tasks.py for the accuracy claim: >= 400 items, so >= 200 test items
CLAIM_SETS = ("negation_ab", "arithmetic_ab", "compare_ab", "mixed_sentiment_ab")


@pytest.mark.parametrize("name", sorted(p.stem for p in (ASSETS / "tasks").glob("*.jsonl")))
def test_task_set_is_clean_and_balanced(name):
    items = load_items(ASSETS / "tasks" / f"{name}.jsonl")
    assert len({it.prompt for it in items}) == len(items), "duplicate questions"
    # a model that always gives the same answer scores about 0.5
    counts = Counter(it.choices[it.answer] for it in items)
    assert max(counts.values()) - min(counts.values()) <= 0.05 * len(items), counts
    if name in CLAIM_SETS:
        assert len(items) >= 400


def test_lettered_set_is_scored_in_both_orders():
    items = load_items(ASSETS / "tasks" / "compare_ab.jsonl")
    rows, groups = balanced(items)
    assert len(rows) == 2 * len(items) and groups[:4] == [0, 0, 1, 1]
    first, swapped = rows[0], rows[1]
    assert first.choices[first.answer] != swapped.choices[swapped.answer]  # the right letter moved


def test_make_tasks_rewrites_the_same_files(tmp_path, monkeypatch):
    """The files are what bench/make_tasks.py writes (seeded), not hand edits."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_tasks", ASSETS.parent / "bench" / "make_tasks.py")
    make_tasks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_tasks)
    monkeypatch.setattr(make_tasks, "TASKS", tmp_path / "assets" / "tasks")
    (tmp_path / "assets" / "tasks").mkdir(parents=True)
    make_tasks.main()
    for name in CLAIM_SETS:
        assert (tmp_path / "assets" / "tasks" / f"{name}.jsonl").read_text() == \
            (ASSETS / "tasks" / f"{name}.jsonl").read_text()
